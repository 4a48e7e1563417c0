// The family-wise promise on the paths that split a run (issue 27): --shard and
// several --ref. Seeded A/A runs of a 20-case matrix go through the real
// AdaptiveRounds (as lib/run.ts feeds it: a stopped case's jobs left out) and
// compareRuns (as run-tests and merge-runs judge them), once with the rule each
// path recorded before (a shard counted only its own cases; each later server
// was judged at alpha over the cases alone) and once with the rule run-tests
// records now (lib/run.ts adaptiveRule: the whole matrix's cases x the servers
// after the first). The figures it prints are the closing note's.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AdaptiveRounds, type CaseStop } from '../lib/stats/adaptive.ts';
import { caseKey } from '../lib/cases.ts';
import { compareRuns } from '../lib/stats/compare.ts';
import { seededRandom } from '../lib/stats/interleave.ts';
import { stoppingRule, type StoppingRule } from '../lib/stats/sequential.ts';
import { parseRunRecord } from '../lib/run-record.ts';
import { adaptiveRule } from '../lib/run.ts';
import { expandCases, type Matrix } from '../lib/matrix.ts';
import type { RawRow } from '../lib/results.ts';
import { row as rawRow } from './raw-row.mts';

const MEMS = [2048, 1024, 512, 256];
const SIZES = [5, 4, 3, 2, 1].map((m) => m * 2 ** 20);
const CASES = MEMS.flatMap((mem) => SIZES.map((bytes) => ({ bytes, mem })));
// 800 seeded runs: the A/A rate of one 20-case run is about 3.4% here (800 runs, SE 0.6%); 200 can land above 5% by chance alone.
const N = Number(process.env.FAMILY_SIM_RUNS ?? 800);

/**
 * One run at per-round paired SD `sd` (log): `shards` parts, each with the rule `ruleFor(its case count)`,
 * `sides` servers, every later one `effect` (log) off the first, each upload failing with chance `failP`.
 * Returns, per later server, whether compare-runs called any case faster or slower, how many cases it
 * called slower, and its exit code.
 */
function simRun(seed: number, sd: number, sides: number, shards: number, ruleFor: (shardCases: number) => StoppingRule, effect = 0, failP = 0) {
  const random = seededRandom(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const rows: RawRow[][] = Array.from({ length: sides }, () => []);
  let rule0: StoppingRule | null = null;
  const stops: CaseStop[] = [];
  for (let s = 0; s < shards; s++) {
    const mine = CASES.filter((_, i) => i % shards === s);
    const rule = ruleFor(mine.length);
    rule0 ??= rule; // merge-runs judges the merged run by the first shard's recorded rule
    const rounds = new AdaptiveRounds(rule, sides, 1);
    const phase = random() * 2 * Math.PI;
    for (let it = 1; it <= 1 + rule.looks.at(-1)!; it++) {
      for (const c of mine) {
        const key = caseKey({ file_size_bytes: c.bytes, memory_limit_mb: c.mem, concurrency: 1 });
        if (rounds.stopped(key)) continue;
        const drift = 0.1 * Math.sin(phase + it / 5); // both sides of a round share it
        for (let side = 0; side < sides; side++) {
          const t = 100 * Math.exp(drift + (side > 0 ? effect : 0) + (sd / Math.SQRT2) * normal());
          const failed = random() < failP;
          const r = rawRow({ file_size: `${c.bytes / 2 ** 20}MiB`, file_size_bytes: c.bytes, memory_limit: `${c.mem}MB`, memory_limit_mb: c.mem, iteration: it,
            throughput_mib_s: failed ? null : t, duration_seconds: c.bytes / 2 ** 20 / t,
            ...(failed ? { exit_reason: 'http_error' as const, http_status: 500, sha256_ok: null } : {}) });
          rows[side].push(r);
          rounds.record(side, r);
        }
      }
    }
    stops.push(...rounds.all());
  }
  const config = (i: number) => parseRunRecord({
    schema: 1, matrix: { warmup_iterations: 1, iterations: 49 },
    ab: { refs: Array.from({ length: sides }, (_, k) => `r${k}`), this_ref: i, seed: 1, parent: '/r/x', stopping_rule: rule0, stops },
  }, 'config.json');
  return rows.slice(1).map((cand, k) => {
    const c = compareRuns({ name: 'r0', config: config(0), rows: rows[0] }, { name: `r${k + 1}`, config: config(k + 1), rows: cand });
    return { alarm: c.cases.some((x) => x.verdict === 'faster' || x.verdict === 'slower'), slower: c.cases.filter((x) => x.verdict === 'slower').length, exit: c.exitCode };
  });
}

describe('family-wise promise: shards, several refs, failed rounds', { timeout: 1_200_000 }, () => {
  const sd = Math.log(1.08);
  const matrix = { sizes: SIZES.map((bytes) => ({ label: `${bytes / 2 ** 20}MiB`, bytes })), memoryLimitsMb: MEMS, concurrency: [1], iterations: 49 } as unknown as Matrix;

  test('the rule run-tests records: the whole matrix x the later servers, whatever the shard', () => {
    const adaptive = { maxRounds: 48, noisePct: 3 };
    assert.equal(adaptiveRule(adaptive, expandCases(matrix))!.cases, 20);
    assert.equal(adaptiveRule(adaptive, expandCases(matrix), 2)!.cases, 40);
    assert.equal(adaptiveRule(adaptive, expandCases({ ...matrix, concurrency: [1, 2] } as Matrix), 1)!.cases, 40);
  });

  test('4 shards merged, A/A: any faster or slower, per-shard rule against the whole-matrix rule', (t) => {
    const rate = (ruleFor: (n: number) => StoppingRule) => {
      let alarms = 0;
      for (let i = 0; i < N; i++) if (simRun(1000 + i, sd, 2, 4, ruleFor)[0].alarm) alarms++;
      return alarms / N;
    };
    const before = rate((n) => stoppingRule({ alpha: 0.05, noisePct: 3, cases: n }));
    const after = rate(() => adaptiveRule({ maxRounds: 48, noisePct: 3 }, expandCases(matrix))!);
    t.diagnostic(`4 shards of 5 cases, ${N} A/A runs at paired SD 8%: any faster/slower ${(100 * before).toFixed(1)}% with each shard's own rule, ${(100 * after).toFixed(1)}% with the whole matrix's`);
    assert.ok(after <= 0.05, `after ${after}`);
    assert.ok(before > after, `before ${before} after ${after}`);
  });

  test('3 refs, A/A/A: a run exits 1 or calls anything faster or slower, per-comparison rule against the family of both', (t) => {
    const rate = (rule: StoppingRule) => {
      let alarms = 0, exits = 0;
      for (let i = 0; i < N; i++) {
        const r = simRun(5000 + i, sd, 3, 1, () => rule);
        if (r.some((x) => x.alarm)) alarms++;
        if (r.some((x) => x.exit === 1)) exits++;
      }
      return { alarms: alarms / N, exits: exits / N };
    };
    const before = rate(stoppingRule({ alpha: 0.05, noisePct: 3, cases: 20 }));
    const after = rate(adaptiveRule({ maxRounds: 48, noisePct: 3 }, expandCases(matrix), 2)!);
    t.diagnostic(`3 refs, 20 cases, ${N} A/A/A runs at paired SD 8%: any faster/slower ${(100 * before.alarms).toFixed(1)}% (exit 1 ${(100 * before.exits).toFixed(1)}%) judged at alpha / 20 per comparison; ` +
      `${(100 * after.alarms).toFixed(1)}% (exit 1 ${(100 * after.exits).toFixed(1)}%) at alpha / 40`);
    assert.ok(after.alarms <= 0.05, `after ${JSON.stringify(after)}`);
    assert.ok(after.alarms <= before.alarms, `before ${JSON.stringify(before)} after ${JSON.stringify(after)}`);
  });

  test('failed rounds: a case with some failed uploads is judged on all its rounds at the end, not at the look before', (t) => {
    const rule = adaptiveRule({ maxRounds: 48, noisePct: 3 }, expandCases(matrix))!;
    const power = (failP: number) => {
      let found = 0, alarms = 0;
      const M = Math.ceil(N / 8);
      for (let i = 0; i < M; i++) found += simRun(9000 + i, sd, 2, 1, () => rule, Math.log(0.95), failP)[0].slower / CASES.length;
      for (let i = 0; i < M; i++) if (simRun(12000 + i, sd, 2, 1, () => rule, 0, failP)[0].alarm) alarms++;
      return { found: found / M, aa: alarms / M };
    };
    const clean = power(0), failing = power(0.03);
    t.diagnostic(`20 cases at paired SD 8%, 5% slower found in ${(100 * clean.found).toFixed(1)}% of cases without failures, ${(100 * failing.found).toFixed(1)}% with 3% of uploads failing; ` +
      `A/A any faster/slower ${(100 * clean.aa).toFixed(1)}% and ${(100 * failing.aa).toFixed(1)}%`);
    assert.ok(failing.aa <= 0.05 && clean.aa <= 0.05, JSON.stringify({ clean, failing }));
    // About 1 - 0.97^2 = 6% of rounds fail: fewer rounds, a little less power, not the drop to the look before (36).
    assert.ok(failing.found >= clean.found - 0.1, JSON.stringify({ clean, failing }));
  });
});
