// --bisect GOOD BAD: the pure rules (lib/stats/bisect.ts) on literal data, then
// run-tests itself on fixture repositories of the fixture server (Go): a
// 16-commit line slowed at one commit, with a commit that does not build at
// the first midpoint, interrupted with SIGINT after its first steps and
// resumed; endpoints that do not differ; a commit that holds uploads in memory,
// found by server_peak_rss; bad input.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  answer, chooseCase, classifyStep, currentRange, judgePair, metricByName, nextMidpoint, signTestP, StepRounds, stopWhenClassified, type CommitState, type PairJudgement,
} from '../lib/stats/bisect.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import type { RawRow } from '../lib/results.ts';
import { stoppingRule } from '../lib/stats/sequential.ts';
import { FIXTURE_BUILD_COMMAND, hasGo, makeBisectRepo } from './fixture-repo.mts';
import { readSteps } from '../lib/bisect-plan.ts';
import { expandRefRanges } from '../lib/bisect-run.ts';
import { historyOf, renderHistory } from '../lib/render/history.ts';
import type { Matrix } from '../lib/matrix.ts';
import { needs } from './skips.mts';

test('classifyStep: a midpoint like the good end, like the bad end, between them, or undecided', () => {
  // a = good end -> midpoint, b = midpoint -> bad end; GOOD -> BAD went down (slower).
  assert.equal(classifyStep('same', 'down', 'down'), 'good');
  assert.equal(classifyStep('inconclusive', 'down', 'down'), 'good');
  assert.equal(classifyStep('up', 'down', 'down'), 'good', 'faster than the good end is not the regression');
  assert.equal(classifyStep('down', 'same', 'down'), 'bad');
  assert.equal(classifyStep('down', 'inconclusive', 'down'), 'bad');
  assert.equal(classifyStep('inconclusive', 'same', 'down'), 'bad');
  assert.equal(classifyStep('down', 'down', 'down'), 'between');
  assert.equal(classifyStep('inconclusive', 'inconclusive', 'down'), 'undecided');
  assert.equal(classifyStep('same', 'same', 'down'), 'undecided', 'like both ends at once: no answer');
  // An improvement bisected: the same rules mirrored.
  assert.equal(classifyStep('up', 'inconclusive', 'up'), 'bad');
  assert.equal(classifyStep('same', 'up', 'up'), 'good');
});

test('nextMidpoint and answer: halving, skipped builds left out, a range no step could split, a gradual change', () => {
  const s = (entries: [number, CommitState][]) => new Map(entries);
  assert.equal(nextMidpoint(15, s([])), 7);
  assert.equal(nextMidpoint(15, s([[7, 'good']])), 11);
  assert.equal(nextMidpoint(15, s([[7, 'skip']])), 8, 'next to the skipped one, nearest the middle');
  assert.deepEqual(currentRange(15, s([[7, 'skip'], [8, 'good'], [11, 'bad'], [3, 'bad']])), { lo: 0, hi: 3 }, 'the first bad bounds the range');
  const found = s([[7, 'good'], [11, 'bad'], [9, 'good'], [10, 'good']]);
  assert.equal(nextMidpoint(15, found), null);
  assert.deepEqual(answer(15, found), { kind: 'culprit', index: 11, parent: 10 });
  const blocked = s([[7, 'good'], [9, 'bad'], [8, 'skip']]);
  assert.equal(nextMidpoint(15, blocked), null);
  assert.deepEqual(answer(15, blocked), { kind: 'range', lo: 7, hi: 9, skipped: [8], undecided: [] });
  const unsure = s([[1, 'undecided']]);
  assert.deepEqual(answer(2, unsure), { kind: 'range', lo: 0, hi: 2, skipped: [], undecided: [1] });
  assert.equal(nextMidpoint(15, s([[7, 'between']])), null);
  assert.deepEqual(answer(15, s([[7, 'between']])), { kind: 'gradual', at: [7] });
  assert.deepEqual(answer(1, s([])), { kind: 'culprit', index: 1, parent: 0 }, 'GOOD and BAD neighbours: BAD itself');
  // A line of n commits with the change at c is always found in ceil(log2 n) steps when every step decides.
  for (let n = 1; n <= 40; n++) {
    for (let c = 1; c <= n; c++) {
      const states = new Map<number, CommitState>();
      let steps = 0;
      for (let m = nextMidpoint(n, states); m !== null; m = nextMidpoint(n, states), steps++) states.set(m, m >= c ? 'bad' : 'good');
      assert.deepEqual(answer(n, states), { kind: 'culprit', index: c, parent: c - 1 }, `n ${n} c ${c}`);
      assert.ok(steps <= Math.ceil(Math.log2(n)), `n ${n} c ${c}: ${steps} steps`);
    }
  }
});

test('signTestP: exact two-sided sign test', () => {
  assert.equal(signTestP(0, 0), 1);
  assert.equal(signTestP(6, 6), 2 / 64);
  assert.equal(signTestP(0, 6), 2 / 64);
  assert.equal(signTestP(3, 6), 1);
  assert.ok(Math.abs(signTestP(9, 10) - (2 * 11) / 1024) < 1e-15);
});

test('judgePair: throughput by the group-sequential rule, survival by the sign test at the look\'s level', () => {
  const rule = stoppingRule({ alpha: 0.05, noisePct: 3, cases: 1, maxRounds: 16 });
  const throughput = metricByName('throughput')!, survival = metricByName('survival')!;
  const x = [100, 102, 98, 101, 99, 100, 103, 97, 100, 101];
  const slower = x.map((v, i) => v * (0.5 + i * 0.001));
  const j = judgePair(throughput, x, slower, 10, rule);
  assert.equal(j.move, 'down');
  assert.ok(j.estimate < Math.log(0.52) && j.hi < 0);
  assert.equal(judgePair(throughput, x.slice(0, 6), x.slice(0, 6).map((v) => v * 0.5), 6, rule).move, 'inconclusive', '6 rounds cannot reach the first look\'s level');
  // Survival: 10 rounds where the candidate always fails and the baseline survives.
  const ok = Array(10).fill(1), dead = Array(10).fill(0);
  const s = judgePair(survival, ok, dead, 10, rule);
  assert.equal(s.move, 'down');
  assert.equal(s.estimate, -1);
  assert.equal(s.p, 2 / 1024);
  assert.equal(judgePair(survival, ok, ok, 10, rule).move, 'same', 'no round differs after 10');
  assert.equal(judgePair(survival, ok.slice(0, 6), ok.slice(0, 6), 6, rule).move, 'inconclusive', '6 agreeing rounds are too few for same');
  assert.equal(metricByName('no_such'), null);
});

function row(iteration: number, throughput: number | null, rss = 20e6): RawRow {
  return {
    file_size: '8MiB', memory_limit: '512MB', duration_seconds: throughput ? 8 / throughput : 1, peak_memory_bytes: 1e8, http_status: throughput ? 200 : null,
    exit_reason: throughput ? 'success' : 'oom_killed', iteration, file_size_bytes: 8 * 2 ** 20, memory_limit_mb: 512, transfer_seconds: null, processing_seconds: null,
    throughput_mib_s: throughput, server_peak_rss_bytes: rss, sha256_ok: true, started_at: '', error: '', host_cpu_pressure_pct: null, failure_phase: throughput ? null : 'upload',
    server_cpu_user_seconds: null, server_cpu_system_seconds: null, server_write_bytes: null, data_dir_bytes: null, download_ttfb_seconds: null, download_mib_s: null, concurrency: 1, iteration_peak_rss_bytes: null,
  };
}

test('StepRounds: looks only at the rule\'s round counts, stops once the midpoint is classified, ignores warm-up', () => {
  const rule = stoppingRule({ alpha: 0.05, noisePct: 3, cases: 1, maxRounds: 16 });
  const r = new StepRounds(rule, metricByName('throughput')!, 1, 3, [[0, 1], [1, 2]], stopWhenClassified('down'));
  let stop = null;
  for (let i = 1; i <= 17 && !stop; i++) {
    const wobble = 1 + ((i * 7) % 5) / 100;
    r.record(0, row(i, 100 * wobble));
    r.record(1, row(i, 100 * wobble * (i === 1 ? 0.1 : 1 + (((i * 3) % 7) - 3) / 100))); // within ±3% of the good end; a warm-up outlier, ignored
    stop = r.record(2, row(i, 50 * wobble));
    if (i < 11) assert.equal(stop, null, `no stop before the look at 10 rounds (iteration ${i})`);
  }
  assert.deepEqual(stop, { case: `${8 * 2 ** 20}@512`, rounds: 10, state: 'decided', verdicts: ['same', 'down'] });
  assert.ok(r.stopped(`${8 * 2 ** 20}@512`));
  const j = r.judgements(`${8 * 2 ** 20}@512`)!;
  assert.equal(classifyStep(j[0].move, j[1].move, 'down'), 'good');
  assert.equal(r.values(`${8 * 2 ** 20}@512`)[0].length, 10);
});

test('chooseCase: the case whose endpoints differ most, among those that differ', () => {
  const j = (move: PairJudgement['move'], estimate: number): PairJudgement => ({ from: 0, to: 1, move, rounds: 16, estimate, lo: estimate, hi: estimate, p: 0, level: 0 });
  assert.deepEqual(chooseCase([{ case: 'a', judgement: j('down', -0.2) }, { case: 'b', judgement: j('down', -0.6) }, { case: 'c', judgement: j('inconclusive', -0.9) }])?.case, 'b');
  assert.equal(chooseCase([{ case: 'a', judgement: j('same', 0) }]), null);
});

/** A fixture repository, a matrix pointing at it, a cache and a results folder in one temporary folder. */
async function setup(t: TestContext, repo: Parameters<typeof makeBisectRepo>[1], size = '4MiB') {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bisect-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const r = await makeBisectRepo(path.join(tmp, 'repo'), repo);
  const matrix = path.join(tmp, 'matrix.yaml');
  fs.writeFileSync(matrix, [`sizes: [${size}]`, 'memory_limits: [512]', 'iterations: 5', 'provider: local', 'server:', '  source: repo', `  build: ${JSON.stringify(FIXTURE_BUILD_COMMAND)}`, ''].join('\n'));
  const args = (...a: string[]) => [path.join(SUITE_DIR, 'run-tests'), ...(a[0] === '--resume' ? a : ['--matrix', matrix, '--out', path.join(tmp, 'results'), ...a])];
  const env = { ...process.env, UPS_CACHE_DIR: path.join(tmp, 'cache') };
  const run = (...a: string[]) => spawnSync(args(...a)[0], args(...a).slice(1), { cwd: tmp, encoding: 'utf8', env });
  return { tmp, repo: r, run, args, env };
}

const json = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'bisect.json'), 'utf8'));

test('--bisect on 16 commits slowed at one: a build failing at the midpoint is skipped, Ctrl-C keeps the steps, --resume finds the commit', async (t) => {
  if (!(await hasGo())) return t.skip(needs('go', 'go is not installed (Go 1.22+ is needed to build the fixture server)'));
  const { repo, args, env, run, tmp } = await setup(t, { count: 16, slowAt: 11, brokenAt: 7 });
  // Interrupted while a step after the first completed ones is being measured.
  const a = args('--bisect', repo.commits[0], 'main', '--max-iterations', '17', '--seed', '5');
  const child = spawn(a[0], a.slice(1), { cwd: tmp, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const dirOf = () => fs.readdirSync(path.join(tmp, 'results')).map((d) => path.join(tmp, 'results', d))[0];
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const dir = fs.existsSync(path.join(tmp, 'results')) ? dirOf() : null;
    // The confirmation, the skipped build and one measured midpoint done: interrupt the next midpoint's rounds.
    if (dir && readSteps(dir).length >= 3 && err.includes('step 3: ') && err.slice(err.indexOf('step 3: ')).includes('#2: success')) break;
    assert.equal(child.exitCode, null, `the bisection ended before it could be interrupted:\n${err.slice(-3000)}`);
  }
  child.kill('SIGINT');
  assert.equal(await exited, 130, err.slice(-3000));
  const dir = out.trim().split('\n').at(-1)!;
  const before = readSteps(dir);
  assert.deepEqual(before.map((s) => s.kind), ['confirm', 'skip', 'midpoint']);
  assert.match(err, /go on with: run-tests --resume /);

  const r = run('--resume', dir);
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  assert.equal(r.stdout.trim().split('\n').at(-1), dir);
  assert.match(r.stderr, /resuming: 3 completed steps/);
  const steps = readSteps(dir);
  assert.deepEqual(steps.slice(0, 3), before, 'the completed steps are kept as they were');
  const commits = steps.filter((s) => s.kind !== 'confirm').map((s) => s.commit);
  assert.equal(new Set(commits).size, commits.length, `no commit measured twice: ${commits}`);
  const b = json(dir);
  assert.equal(b.culprit.commit, repo.commits[11]);
  assert.equal(b.culprit.parent, repo.commits[10]);
  assert.equal(b.culprit.change.verdict, 'worse');
  assert.ok(b.culprit.change.hi < 0, 'the interval of the change against the parent excludes no change');
  assert.ok(b.steps_taken <= Math.ceil(Math.log2(15)) + 2, `${b.steps_taken} steps`);
  const skipped = b.steps.find((s: { kind: string }) => s.kind === 'skip');
  assert.equal(skipped.commit, 7);
  assert.match(skipped.build_error, /too many return values/);
  assert.deepEqual(b.path.map((p: { index: number }) => p.index), [...b.path.map((p: { index: number }) => p.index)].sort((x: number, y: number) => x - y), 'the path in history order');
  assert.ok(b.path.every((p: { index: number; vs_good: unknown; rounds: number }) => p.index === 0 || p.vs_good !== null || p.rounds === 0));
  const md = fs.readFileSync(path.join(dir, 'bisect.md'), 'utf8');
  assert.match(md, new RegExp(`culprit \\| \`${repo.commits[11]}\``));
  assert.match(md, /build failed: .*too many return values/);
  assert.ok(fs.readFileSync(path.join(dir, 'bisect.svg'), 'utf8').includes('culprit'));
  // Every step's refs have their usual results folders.
  for (const s of steps.filter((x) => x.folder)) for (const f of fs.readdirSync(path.join(dir, s.folder!)).filter((f) => !f.startsWith('history'))) {
    assert.ok(fs.existsSync(path.join(dir, s.folder!, f, 'raw.csv')), `${s.folder}/${f}/raw.csv`);
  }
});

test('--bisect of two endpoints that do not differ: nothing to bisect, said so with the interval, exit 0', async (t) => {
  if (!(await hasGo())) return t.skip(needs('go', 'go is not installed (Go 1.22+ is needed to build the fixture server)'));
  const { run } = await setup(t, { count: 3 });
  const r = run('--bisect', 'main~2', 'main', '--max-iterations', '11', '--seed', '1', '--noise', '40');
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  assert.match(r.stderr, /do not differ in throughput .*\[.*%, .*%\].*Nothing to bisect/);
  const b = json(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(b.culprit, null);
  assert.deepEqual(b.answer, { kind: 'no difference' });
  assert.equal(b.steps.length, 1);
});

test('--bisect --metric server_peak_rss: the commit that holds uploads in memory', async (t) => {
  if (!(await hasGo())) return t.skip(needs('go', 'go is not installed (Go 1.22+ is needed to build the fixture server)'));
  const { repo, run } = await setup(t, { count: 8, holdAt: 5 }, '16MiB');
  const r = run('--bisect', 'main~7', 'main', '--metric', 'server_peak_rss', '--max-iterations', '17', '--seed', '2');
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  const b = json(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(b.culprit.commit, repo.commits[5]);
  assert.equal(b.direction, 'worse');
  assert.ok(b.culprit.change.lo > Math.log(1.3), `peak RSS up by far more than 30%: ${b.culprit.change.text}`);
  assert.ok(b.steps_taken <= Math.ceil(Math.log2(7)) + 2);
});

test('--bisect bad input: refs not ancestors, unknown metric, one ref: exit 2 before anything runs', async (t) => {
  if (!(await hasGo())) return t.skip(needs('go', 'go is not installed (Go 1.22+ is needed to build the fixture server)'));
  const { run } = await setup(t, { count: 3 });
  const backwards = run('--bisect', 'main', 'main~2');
  assert.equal(backwards.status, 2);
  assert.match(backwards.stderr, /Error: main is not an ancestor of main~2/);
  const metric = run('--bisect', 'main~2', 'main', '--metric', 'speed');
  assert.equal(metric.status, 2);
  assert.match(metric.stderr, /--metric: unknown metric "speed" \(one of throughput, .*survival\)/);
  assert.equal(run('--bisect', 'main~2').status, 2);
  assert.equal(run('--bisect', 'main~2', 'nope').status, 2);
});

test('history view: each ref against the one before, paired by round, and where throughput changed', () => {
  const side = (name: string, f: (i: number) => number) => ({ name, record: null, rows: Array.from({ length: 10 }, (_, k) => row(k + 1, f(k + 1))) });
  const wobble = (i: number) => 100 * (1 + ((i * 7) % 5) / 100);
  const h = historyOf([side('a', wobble), side('b', (i) => wobble(i) * 1.001), side('c', (i) => wobble(i) / 2)]);
  const [a, b, c] = h[0].points;
  assert.equal(a.vsPrevious, null);
  assert.equal(b.changed, false);
  assert.equal(c.changed, true);
  assert.match(c.vsPrevious!, /^-50\.0% \[.*\] worse$/);
  const md = renderHistory(h, fs.readFileSync(path.join(SUITE_DIR, 'templates', 'history.md.mustache'), 'utf8'), null);
  assert.match(md, /\| c \| 5\d\.\d \| -50\.0% \[.*\] worse \*\*changed\*\* \|/);
});

test('--ref A..B: A, then every first-parent commit up to B; --every N keeps every Nth and B', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bisect-range-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const r = await makeBisectRepo(path.join(tmp, 'repo'), { count: 6 });
  const m = { server: { kind: 'source', source: r.dir } } as Matrix;
  const short = (i: number) => r.commits[i].slice(0, 12);
  assert.deepEqual(await expandRefRanges(m, ['main~5..main'], { every: 1, firstParent: true }), ['main~5', short(1), short(2), short(3), short(4), 'main']);
  assert.deepEqual(await expandRefRanges(m, ['v0', 'main~5..main'].slice(1), { every: 2, firstParent: true }), ['main~5', short(2), short(4), 'main']);
  assert.deepEqual(await expandRefRanges(m, ['x', 'y'], { every: 1, firstParent: true }), ['x', 'y'], 'no range: the refs as given');
  await assert.rejects(expandRefRanges(m, ['main..main~5'], { every: 1, firstParent: true }), /main is not an ancestor of main~5/);
  await assert.rejects(expandRefRanges(m, ['..main'], { every: 1, firstParent: true }), /a range is A\.\.B/);
});

test('the culprit headline: the change from GOOD to BAD, and its own comparison when that stopped undecided', { timeout: 120_000 }, async () => {
  const { culpritHeadline } = await import('../lib/bisect-run.ts');
  const commit = (c: string, subject: string) => ({ commit: c.repeat(40).slice(0, 40), subject, date: '2022-07-31T12:20:54-04:00' });
  const plan = {
    argv: [], cwd: '/', source: '/', good: '1.1.8', bad: '1.2.0', metric: 'survival', first_parent: true, seed: 1, started_at: '',
    commits: [commit('a', 'good end'), commit('b', 'parent'), commit('c', 'Use less RAM while parsing a multipart form (#287)'), commit('d', 'bad end')],
  };
  const survival = metricByName('survival')!;
  const undecided = culpritHeadline(plan, { kind: 'culprit', index: 2, parent: 1 }, survival, { text: '+100 pts [+100 pts, +100 pts]', verdict: 'inconclusive', rounds: 10 }, 'better');
  assert.equal(undecided, 'cccccccccccc "Use less RAM while parsing a multipart form (#287)" made survival better: +100 pts [+100 pts, +100 pts] against its parent bbbbbbbbbbbb' +
    ' (that comparison alone: inconclusive after 10 rounds; its step judged it like 1.2.0 by the rule below).');
  const decided = culpritHeadline(plan, { kind: 'culprit', index: 2, parent: 1 }, metricByName('throughput')!, { text: '-41.4% [-44.0%, -38.2%]', verdict: 'worse', rounds: 16 }, 'worse');
  assert.equal(decided, 'cccccccccccc "Use less RAM while parsing a multipart form (#287)" made throughput worse: -41.4% [-44.0%, -38.2%] against its parent bbbbbbbbbbbb.');
});
