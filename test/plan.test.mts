// The planner (lib/stats/plan.ts) on literal figures: bytes a round, the rounds an
// unchanged case is expected to take at a given noise, the wall time, the
// shards, the time left; and --plan through run-tests on the shipped matrix.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { $ } from 'zx';
import { caseSdPct, duration, expectedLook, jobSeconds, makePlan, nextProfile, renderPlan, timeLeft, type MachineProfile } from '../lib/stats/plan.ts';
import { pooledRule } from '../lib/stats/pooled.ts';
import { stoppingRule } from '../lib/stats/sequential.ts';
import { SUITE_DIR } from '../lib/paths.ts';

const MiB = 2 ** 20;
const profile: MachineProfile = { upload_mib_s: 100, download_mib_s: 200, job_overhead_seconds: 2, paired_sd_pct: 8, source: 'test' };

describe('plan', () => {
  test('a job: overhead + size / upload + size / download', () => {
    assert.equal(jobSeconds({ key: 'k', label: 'l', bytes: 100 * MiB, concurrency: 1 }, profile), 2 + 1 + 0.5);
    assert.equal(jobSeconds({ key: 'k', label: 'l', bytes: 100 * MiB, concurrency: 4 }, profile), 2 + 4 + 2);
  });

  test('the look an unchanged run is expected to end at: the simulated median of its last case', () => {
    const rule = stoppingRule({ alpha: 0.05, noisePct: 3, cases: 20 });
    const pooled = pooledRule({ noisePct: 3, cases: 20 });
    // Each case by its own rule alone: of 20 cases, some runs to the cap more often than not, even at 4%.
    assert.deepEqual([4, 8, 15].map((s) => expectedLook(s, rule, null, 20)), [48, 48, 48]);
    // With the pool, 20 cases end together: at 10 rounds at 4%, 24 at 8% (a formula for one case said 16), the cap at 15%.
    assert.deepEqual([4, 8, 15].map((s) => expectedLook(s, rule, pooled, 20)), [10, 24, 48]);
    // Two cases pool little, one has no pool.
    assert.equal(expectedLook(8, rule, pooled, 2), 48);
    assert.equal(expectedLook(6, rule, pooled, 2), 24);
    assert.equal(expectedLook(8, rule, pooled, 1), 48);
    // Seeded: the same answer every time.
    assert.equal(expectedLook(8, rule, pooled, 20), expectedLook(8, { ...rule }, { ...pooled }, 20));
  });

  test('a plan: bytes a round, rounds, seconds, shards; rendered', () => {
    const cases = [
      { key: 'a', label: '512MB 100MiB', bytes: 100 * MiB, concurrency: 1 },
      { key: 'b', label: '512MB 500MiB', bytes: 500 * MiB, concurrency: 1 },
    ];
    const rule = stoppingRule({ alpha: 0.05, noisePct: 3, cases: 2 });
    // At a paired SD of 4% the last of two unchanged cases is expected to end at 10 rounds (16 while the pool
    // weighed every round alike, at 98.5%), each case after 13 on average; one alone after 23.
    const quiet = { ...profile, paired_sd_pct: 4 };
    const p = makePlan({ cases, sides: 2, warmup: 1, iterations: null, rule, pooled: pooledRule({ noisePct: 3, cases: 2 }), profile: quiet, shards: [{ total: 2, cases: [['b'], ['a']] }], canaryNow: null });
    assert.equal(p.bytes_per_round, 2 * 2 * 600 * MiB); // up and down, both sides
    assert.deepEqual(p.rounds, { least: 6, expected: 10, most: 48 });
    // Per round: a = 2 x 3.5 s, b = 2 x (2 + 5 + 2.5) s = 19 s; 26 s a round, times rounds + the warm-up.
    assert.deepEqual(p.per_case.map((c) => c.expected_rounds), [13, 13]);
    assert.equal(p.seconds.expected, 26 * 14);
    assert.equal(p.seconds.most, 26 * 49);
    assert.deepEqual(p.shards, [{ total: 2, expected_seconds: 19 * 24, most_seconds: 19 * 49 }]);
    const text = renderPlan(p);
    assert.match(text, /plan: 2 cases x 2 sides; one round moves 2\.34 GiB/);
    assert.match(text, /rounds per case: least 6, expected 10 \(the last case\), most 48/);
    assert.match(text, /wall time here: least 3 min, expected 6 min, most 21 min/);
    assert.match(text, /with --shard k\/2: the heaviest shard expected 8 min, at most 16 min/);
    // A shard pools only its own cases: at 8% 20 cases pool to 24 rounds, shards of 10 too, shards of one case
    // run to the cap more often than not.
    const twenty = Array.from({ length: 20 }, (_, k) => ({ key: `c${k}`, label: `c${k}`, bytes: 100 * MiB, concurrency: 1 }));
    const rule20 = stoppingRule({ alpha: 0.05, noisePct: 3, cases: 20 });
    const split = makePlan({ cases: twenty, sides: 2, warmup: 1, iterations: null, rule: rule20, pooled: pooledRule({ noisePct: 3, cases: 20 }), profile,
      shards: [{ total: 2, cases: [twenty.slice(0, 10).map((c) => c.key), twenty.slice(10).map((c) => c.key)] }, { total: 20, cases: twenty.map((c) => [c.key]) }], canaryNow: null });
    assert.equal(split.rounds.expected, 24);
    // 3.5 s a job, 2 sides: 7 s a case a round, times the rounds and the warm-up. The last of 20 cases stops at 24,
    // the cases of a half after 15.8 rounds on average; one case alone after 47.
    assert.deepEqual(split.shards, [{ total: 2, expected_seconds: 7 * (10 + 158), most_seconds: 10 * 7 * 49 }, { total: 20, expected_seconds: 7 * 48, most_seconds: 7 * 49 }]);
    // Fixed iterations: every round count is the measured iterations.
    const fixed = makePlan({ cases, sides: 1, warmup: 1, iterations: 5, rule: null, pooled: null, profile, shards: [], canaryNow: null });
    assert.deepEqual(fixed.rounds, { least: 4, expected: 4, most: 4 });
  });

  test('a machine slower now than when profiled: job times scaled by the canary, and said', () => {
    const cases = [{ key: 'a', label: '512MB 100MiB', bytes: 100 * MiB, concurrency: 1 }];
    const rule = stoppingRule({ alpha: 0.05, noisePct: 3, cases: 1 });
    const profiled = { ...profile, canary_cpu_seconds: 0.05 };
    const base = makePlan({ cases, sides: 2, warmup: 1, iterations: null, rule, pooled: null, profile: profiled, shards: [], canaryNow: 0.05 });
    const loaded = makePlan({ cases, sides: 2, warmup: 1, iterations: null, rule, pooled: null, profile: profiled, shards: [], canaryNow: 0.2 });
    assert.equal(base.slowdown, 1);
    assert.equal(loaded.slowdown, 4);
    assert.equal(loaded.seconds.expected, 4 * base.seconds.expected);
    assert.equal(loaded.rounds.expected, base.rounds.expected); // the noise, not the pace, sets the rounds
    assert.match(renderPlan(loaded), /machine now: canary 0\.200 s against 0\.050 s then, so times above are x4\.00 the profile's/);
    assert.doesNotMatch(renderPlan(base), /machine now/);
    // A profile without a canary (older, or the defaults) is not scaled.
    assert.equal(makePlan({ cases, sides: 2, warmup: 1, iterations: null, rule, pooled: null, profile, shards: [], canaryNow: 0.2 }).slowdown, 1);
  });

  test('sizes of their own noise: each case plans its own rounds, the steady heavy ones fewer', () => {
    const four = [512, 256].flatMap((mem) => [500, 100].map((mib) => ({ key: `${mem}/${mib}`, label: `${mem}MB ${mib}MiB`, bytes: mib * MiB, concurrency: 1 })));
    const rule = stoppingRule({ alpha: 0.05, noisePct: 3, cases: 4 });
    const pooled = pooledRule({ noisePct: 3, cases: 4 });
    // As the real 4-case matrix of 2026-12-08, 500MiB steady and 100MiB noisy (it paired 3-6% and 9-13%).
    const sized = { ...profile, paired_sd_pct: 7, paired_sd_pct_by_size: { [String(500 * MiB)]: 3, [String(100 * MiB)]: 14 } };
    const p = makePlan({ cases: four, sides: 2, warmup: 1, iterations: null, rule, pooled, profile: sized, shards: [], canaryNow: null });
    const rounds = Object.fromEntries(p.per_case.map((c) => [c.label, c.expected_rounds]));
    assert.deepEqual(rounds, { '512MB 500MiB': 13, '512MB 100MiB': 26, '256MB 500MiB': 13, '256MB 100MiB': 25 });
    assert.equal(p.rounds.expected, 24); // the last case's
    // The time is each case's jobs over its own rounds and the warm-up.
    assert.equal(p.seconds.expected, p.per_case.reduce((a, c) => a + c.job_seconds * 2 * (c.expected_rounds + 1), 0));
    // One SD for all (their median) plans the heavy cases as long as the noisy ones.
    const flat = makePlan({ cases: four, sides: 2, warmup: 1, iterations: null, rule, pooled, profile: { ...profile, paired_sd_pct: 7 }, shards: [], canaryNow: null });
    assert.ok(p.seconds.expected < flat.seconds.expected, `${p.seconds.expected} against ${flat.seconds.expected}`);
    const text = renderPlan(p);
    assert.match(text, /per-round paired SD 7\.0% \(100 MiB 14\.0%, 500 MiB 3\.0%\)/);
    assert.match(text, new RegExp(`512MB 500MiB: [0-9.]+ s a job, [0-9.]+ s a round, ${rounds['512MB 500MiB']} rounds expected`));
    // A size the profile has no figure for takes the profile's SD.
    assert.equal(caseSdPct(sized, 5 * 2 ** 30), 7);
  });

  test('per file size, the profile keeps the median of the last 5 runs', () => {
    const run = (sd100: number) => ({ ...profile, paired_sd_pct_by_size: { [String(100 * MiB)]: sd100 } });
    let p = nextProfile(null, run(9));
    for (const sd of [12, 10, 30]) p = nextProfile(p, run(sd));
    assert.deepEqual(p.recent_paired_sd_pct_by_size, { [String(100 * MiB)]: [9, 12, 10, 30] });
    assert.equal(p.paired_sd_pct_by_size![String(100 * MiB)], 11);
    // A run of another size keeps this one's.
    p = nextProfile(p, { ...profile, paired_sd_pct_by_size: { [String(500 * MiB)]: 4 } });
    assert.deepEqual(p.paired_sd_pct_by_size, { [String(100 * MiB)]: 11, [String(500 * MiB)]: 4 });
  });

  test('the profile kept after a run: its speeds, and the median paired SD of the last 5 runs', () => {
    const run = (sd: number, up: number) => ({ ...profile, paired_sd_pct: sd, upload_mib_s: up });
    assert.deepEqual(nextProfile(null, run(4, 90)), { ...run(4, 90), recent_paired_sd_pct: [4] });
    let p = nextProfile(null, run(8, 90));
    for (const [sd, up] of [[4.1, 95], [9, 91], [7, 92], [12, 93], [6, 94]]) p = nextProfile(p, run(sd, up));
    // 8 dropped (the sixth back); the median of 4.1, 9, 7, 12, 6 is 7; the speeds are the last run's.
    assert.deepEqual(p.recent_paired_sd_pct, [4.1, 9, 7, 12, 6]);
    assert.equal(p.paired_sd_pct, 7);
    assert.equal(p.upload_mib_s, 94);
    // A profile written before the history was kept counts as one run.
    assert.deepEqual(nextProfile(run(10, 1), run(6, 2)).recent_paired_sd_pct, [10, 6]);
    assert.equal(nextProfile(run(10, 1), run(6, 2)).paired_sd_pct, 8);
  });

  test('time left: cases not stopped run to the later of expected and their next look, at their own pace', () => {
    const rule = stoppingRule({ alpha: 0.05, noisePct: 3, cases: 2 });
    const cases = [{ key: 'a', label: 'a', bytes: 100 * MiB, concurrency: 1 }, { key: 'b', label: 'b', bytes: 500 * MiB, concurrency: 1 }];
    const p = makePlan({ cases, sides: 2, warmup: 1, iterations: null, rule, pooled: pooledRule({ noisePct: 3, cases: 2 }), profile: { ...profile, paired_sd_pct: 4 }, shards: [], canaryNow: null });
    // Nothing run: the plan's expected time.
    assert.equal(timeLeft(p, [], rule.looks, 1), p.seconds.expected);
    // a stopped; b at 12 rounds, 4 s a job: its next look is 16, so 4 rounds x 2 sides x 4 s.
    assert.equal(timeLeft(p, [{ key: 'a', rounds: 10, stopped: true, jobSeconds: 3 }, { key: 'b', rounds: 12, stopped: false, jobSeconds: 4 }], rule.looks, 1), 32);
    assert.equal(duration(59), '59 s');
    assert.equal(duration(3 * 3600 + 21 * 60), '3 h 21 min');
  });

  test('--plan on the shipped matrix with two refs: prints the plan, exits 0, builds nothing', async () => {
    const t0 = performance.now();
    const r = await $({ nothrow: true, quiet: true, cwd: SUITE_DIR })`${path.join(SUITE_DIR, 'run-tests')} --plan --ref A --ref B`;
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^plan: 20 cases x 2 sides/);
    assert.match(r.stdout, /with --shard k\/8/);
    assert.doesNotMatch(r.stderr, /building/);
    // No bound on the time here (a shared machine); the figure goes to the note.
    process.stderr.write(`--plan took ${seconds.toFixed(2)} s\n`);
  });
});
