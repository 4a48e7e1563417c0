// compare-runs: verdicts, warm-up and failure handling, one-side-only cases,
// geometric mean, bad input (in-process and through ./compare-runs), and a
// golden compare.md for the fixture pair in test/fixtures/runs/.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { $ } from 'zx';
import { main } from '../compare-runs.mts';
import { comparisonChartSvg, throughputChartSvg } from '../lib/charts.ts';
import { warmupFor } from '../lib/cases.ts';
import { compareRuns, DEFAULT_THRESHOLDS, iterationsNeeded, type RunInput } from '../lib/compare.ts';
import { loadRun } from '../lib/load-run.ts';
import { parseRunRecord } from '../lib/run-record.ts';
import { compareJson, renderCompare } from '../lib/compare-report.ts';
import { familyOf } from '../lib/family.ts';
import { stoppingRule } from '../lib/sequential.ts';
import { RAW_COLUMNS, rawCsvHeader, rawCsvLine, type RawRow } from '../lib/results.ts';
import { assertGolden } from './golden.mts';
import { row } from './raw-row.mts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SUITE = path.resolve(HERE, '..');
const RUNS = path.join(HERE, 'fixtures', 'runs');
const BASE = path.join(RUNS, 'base');
const CAND = path.join(RUNS, 'cand');

const tmpDirs: string[] = [];
after(() => tmpDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'compare-test-'));
  tmpDirs.push(d);
  return d;
}

async function runMain(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  return { code, stdout, stderr };
}

/** A results folder in a temp dir with the given raw.csv text and config (null: none). */
function makeRun(csv: string | null, config: object | null = { schema: 1 }): string {
  const dir = tmpDir();
  if (csv !== null) fs.writeFileSync(path.join(dir, 'raw.csv'), csv);
  if (config !== null) fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

/** A results folder holding `rows`, run with `iterations` (1 warm-up). */
function runDir(rows: RawRow[], iterations: number): string {
  return makeRun([rawCsvHeader(), ...rows.map(rawCsvLine)].join('\n'), { schema: 1, matrix: { iterations, warmup_iterations: 1 } });
}

/** compare-runs on two folders: exit code, the verdict line, and the throughput table's verdict cell per case. */
async function compareDirs(base: string, cand: string): Promise<{ code: number; verdict: string; cells: string[] }> {
  const r = await runMain([base, cand, '--out', path.join(tmpDir(), 'cmp')]);
  const throughput = r.stdout.split('## Throughput (MiB/s)')[1].split('\n## ')[0];
  const cells = throughput.split('\n').filter((l) => /^\| \d/.test(l)).map((l) => l.split(' | ').at(-1)!.replace(/ \|$/, ''));
  return { code: r.code, verdict: r.stdout.match(/^- Verdict: (.*)$/m)![1], cells };
}

/** Marks the given iterations of a case's rows as failed with `reason`. */
function failAt(rows: RawRow[], iterations: number[], reason: RawRow['exit_reason'] = 'oom_killed'): RawRow[] {
  return rows.map((r) => (iterations.includes(r.iteration) ? { ...r, exit_reason: reason, http_status: null } : r));
}

/** One case's rows from a list of durations (iteration = position + 1). */
function durations(ds: number[], over: Partial<RawRow> = {}): RawRow[] {
  return ds.map((d, i) => row({ duration_seconds: d, iteration: i + 1, ...over }));
}

/** A run whose config.json held `config` (read through the one loader), or none (null). */
function run(name: string, rows: RawRow[], config: object | null = { schema: 1, matrix: { warmup_iterations: 1 } }): RunInput {
  return { name, config: config === null ? null : parseRunRecord(config, `${name}/config.json`), rows };
}

test('warm-up: config value, else iteration 1 when a case has more than one', () => {
  assert.equal(warmupFor({ matrix: { warmup_iterations: 2 } }, 6), 2);
  assert.equal(warmupFor({ matrix: { warmup_iterations: 0 } }, 6), 0);
  assert.equal(warmupFor(null, 6), 1);
  assert.equal(warmupFor(null, 1), 0);
  // A slow first iteration must not move the median: with warm-up 0 it would be in the sample.
  const base = run('a', durations([9, 1, 1, 1, 1, 1]), null);
  const cand = run('b', durations([1, 1, 1, 1, 1, 1]), null);
  const c = compareRuns(base, cand);
  assert.equal(c.cases[0].metrics[1].base!.n, 5);
  assert.equal(c.cases[0].metrics[1].base!.max, 1);
  const c0 = compareRuns(run('a', base.rows, { matrix: { warmup_iterations: 0 } }), cand);
  assert.equal(c0.cases[0].metrics[1].base!.max, 9);
});

test('failed iterations never feed a median, and failures decide fixed / regressed / still failing', () => {
  const ok = durations([1, 1, 1.01, 0.99, 1, 1.02]);
  const failing = durations([1, 1, 1.01, 99, 1, 1.02]).map((r) => (r.duration_seconds === 99 ? { ...r, exit_reason: 'oom_killed' as const } : r));
  const regressed = compareRuns(run('a', ok), run('b', failing));
  const k = regressed.cases[0];
  assert.equal(k.failures, 'regressed');
  assert.equal(k.verdict, 'same', 'the successes left are still compared (within ±2%: inside the noise band)');
  assert.deepEqual(k.newExitReasons, ['oom_killed']);
  assert.equal(k.metrics[1].cand!.n, 4);
  assert.equal(k.metrics[1].cand!.max, 1.02, 'the failed 99 s iteration is not in the sample');
  assert.equal(regressed.exitCode, 1);
  assert.equal(regressed.counts.newlyFailed, 1);

  const fixed = compareRuns(run('a', failing), run('b', ok));
  assert.equal(fixed.cases[0].failures, 'fixed');
  assert.equal(fixed.exitCode, 0);
  assert.equal(compareRuns(run('a', failing), run('b', failing)).cases[0].failures, 'still failing');
  assert.equal(compareRuns(run('a', ok), run('b', ok)).cases[0].failures, null);
  // A failed warm-up iteration is still a failure of the case.
  const warmFail = ok.map((r) => (r.iteration === 1 ? { ...r, exit_reason: 'timeout' as const } : r));
  assert.equal(compareRuns(run('a', ok), run('b', warmFail)).cases[0].failures, 'regressed');
});

test('faster, slower and same cases, exit code and throughput geometric mean', () => {
  const mk = (size: number, ds: number[]) => durations(ds, { file_size: `${size}MiB`, file_size_bytes: size * 2 ** 20 });
  const base = run('a', [...mk(1, [2, 1, 1, 1, 1, 1]), ...mk(2, [2, 1, 1, 1, 1, 1]), ...mk(4, [2, 1, 1, 1, 1, 1])]);
  // 1 MiB: 2x the time (slower); 2 MiB: half the time (faster); 4 MiB: 1% slower (inside the noise band: same).
  const cand = run('b', [...mk(1, [2, 2, 2, 2, 2, 2]), ...mk(2, [1, 0.5, 0.5, 0.5, 0.5, 0.5]), ...mk(4, [2, 1.01, 1.01, 1.01, 1.01, 1.01])]);
  const c = compareRuns(base, cand);
  assert.deepEqual(c.cases.map((k) => k.verdict), ['slower', 'faster', 'same']);
  assert.ok(Math.abs(c.cases[0].metrics[0].changePct! + 50) < 1e-9);
  // 5 v 5 fully separated: p = 2/252, Holm over 3 cases: x3 for the smallest.
  assert.ok(Math.abs(c.cases[0].metrics[0].pAdjusted! - 3 * 0.007936507936507936) < 1e-12);
  assert.ok(Math.abs(c.cases[0].metrics[0].p! - 0.007936507936507936) < 1e-12);
  assert.equal(c.counts.slower, 1);
  assert.equal(c.counts.faster, 1);
  assert.equal(c.counts.same, 1);
  assert.equal(c.exitCode, 1);
  // Throughput ratios 0.5, 2 and 1/1.01: geometric mean (1/1.01)^(1/3).
  assert.ok(Math.abs(c.throughputGeomean! - (1 / 1.01) ** (1 / 3)) < 1e-12);
  assert.equal(c.geomeanCases, 3);
  // Memory metrics with no data on either side give no verdict, not a crash.
  assert.equal(c.cases[0].metrics[3].verdict, null);
  const same = compareRuns(base, run('b', base.rows));
  assert.equal(same.exitCode, 0);
  assert.ok(same.cases.every((k) => k.verdict === 'same'));
});

test('too few iterations for any p-value to reach alpha: inconclusive, with the iterations that would do', () => {
  const base = run('a', durations([2, 1, 1, 1]));
  const cand = run('b', durations([4, 2, 2, 2]));
  const c = compareRuns(base, cand);
  assert.equal(c.cases[0].verdict, 'inconclusive');
  assert.equal(c.counts.inconclusive, 1);
  assert.equal(c.exitCode, 0);
  // 3 v 3 cannot reach p < 0.05 (0.1 at best): the interval is unbounded.
  assert.equal(c.cases[0].metrics[0].change!.lo, -Infinity);
  const w = c.warnings.find((x) => x.startsWith('Inconclusive in 1 case(s)'));
  assert.ok(w, `warnings: ${c.warnings}`);
  // No spread at all: 4 v 4 (the fewest that can reach 0.05) plus the warm-up.
  assert.match(w, /About --iterations 5 \(warm-up included\) would/);
  assert.equal(iterationsNeeded(0.05, 1), 5);
  assert.equal(iterationsNeeded(0.01, 0), 5); // 5 v 5: 0.0079 < 0.01
  // With --alpha 0.2, 3 v 3 (min p 0.1) can decide.
  assert.equal(compareRuns(base, cand, { ...DEFAULT_THRESHOLDS, alpha: 0.2 }).cases[0].verdict, 'slower');
});

test('2 v 2 measured iterations (3 with 1 warm-up) cannot show a 7.4x slowdown: the verdict says inconclusive, not "no significant change"', async () => {
  const base = runDir(durations([1, 1, 1.01]), 3);
  const cand = runDir(durations([7.4, 7.4, 7.5]), 3);
  const r = await compareDirs(base, cand);
  assert.equal(r.code, 0, 'nothing was shown to regress');
  assert.equal(r.verdict, 'inconclusive: 1 case(s) cannot tell a 3% change from noise; run with --iterations 5 or more, or interleaved (--ref A --ref B)');
  assert.equal(r.cells.length, 1);
  assert.match(r.cells[0], /^inconclusive \(could detect ±[\d.]+%\)$/);
  // The same slowdown over 5 iterations (the shipped matrix's count) is called.
  const five = await compareDirs(runDir(durations([1, 1, 1.01, 0.99, 1]), 5), runDir(durations([7.4, 7.4, 7.5, 7.3, 7.4]), 5));
  assert.equal(five.code, 1);
  assert.equal(five.verdict, 'REGRESSED: 1 case(s) slower, 0 newly failed, 0 failing more often');
  assert.deepEqual(five.cells, ['slower']);
});

test('failing more often than the baseline is a regression (exit 1), less often an improvement', async () => {
  const oneOfThree = runDir(failAt(durations([1, 1, 1]), [2]), 3);
  const threeOfThree = runDir(failAt(durations([1, 1, 1]), [1, 2, 3]), 3);
  const more = await compareDirs(oneOfThree, threeOfThree);
  assert.equal(more.code, 1);
  assert.equal(more.verdict, 'REGRESSED: 0 case(s) slower, 0 newly failed, 1 failing more often');
  assert.deepEqual(more.cells, ['fails more: 3/3 vs 1/3 (oom_killed)']);
  const less = await compareDirs(threeOfThree, oneOfThree);
  assert.equal(less.code, 0);
  assert.equal(less.verdict, 'improved, nothing regressed');
  assert.deepEqual(less.cells, ['fails less: 1/3 vs 3/3 (oom_killed)']);
  // Rates, not counts: 1 of 2 is more than 2 of 6.
  const rates = compareRuns(run('a', failAt(durations([1, 1, 1, 1, 1, 1]), [2, 3])), run('b', failAt(durations([1, 1]), [2])));
  assert.equal(rates.cases[0].failures, 'fails more');
  assert.equal(rates.exitCode, 1);
});

test('a case failing at the same rate on both sides still has its successes compared: slower is a regression', async () => {
  const base = runDir(failAt(durations([1, 1, 1.01, 0.99, 1, 1]), [2], 'timeout'), 6);
  const cand = runDir(failAt(durations([2, 2, 2.02, 1.98, 2, 2]), [2], 'timeout'), 6);
  const r = await compareDirs(base, cand);
  assert.equal(r.code, 1);
  assert.equal(r.verdict, 'REGRESSED: 1 case(s) slower, 0 newly failed, 0 failing more often');
  assert.deepEqual(r.cells, ['still failing: 1/6 vs 1/6 (timeout); slower']);
});

test('a noisy sample (throughput CV above 10%) is warned about', () => {
  const quiet = durations([1, 1, 1.01, 0.99, 1, 1.02]);
  const noisy = durations([1, 1, 1.5, 0.7, 1, 1.3]);
  assert.equal(compareRuns(run('a', quiet), run('b', quiet)).warnings.length, 0);
  const w = compareRuns(run('a', quiet), run('b', noisy)).warnings.filter((x) => x.startsWith('Noisy'));
  assert.equal(w.length, 1);
  assert.match(w[0], /^Noisy measurements: 1 of 2 samples .* \(worst 3\d%: candidate 10MiB @ 256MB\)/);
});

test('one-side-only cases are listed, and differing settings are warned about', () => {
  const base = run('a', [...durations([1, 1, 1, 1, 1, 1]), ...durations([1, 1], { memory_limit: '512MB', memory_limit_mb: 512 })], {
    schema: 1, provider: 'local', matrix: { iterations: 6, warmup_iterations: 1 }, host: { hostname: 'h1', cores: 2 }, suite_git: { commit: 'aaa' },
  });
  const cand = run('b', [...durations([1, 1, 1, 1, 1, 1]), ...durations([1], { file_size: '1GiB', file_size_bytes: 2 ** 30 })], {
    schema: 1, provider: 'qemu', matrix: { iterations: 6, warmup_iterations: 1 }, host: { hostname: 'h2', cores: 2 }, suite_git: { commit: 'bbb' },
    finished: false, stop_reason: 'interrupted',
  });
  const c = compareRuns(base, cand);
  assert.equal(c.cases.length, 1);
  assert.deepEqual(c.onlyOneSide, [
    { fileSize: '10MiB', memoryLimit: '512MB', side: 'baseline', iterations: 2 },
    { fileSize: '1GiB', memoryLimit: '256MB', side: 'candidate', iterations: 1 },
  ]);
  const text = c.warnings.join('\n');
  assert.match(text, /settings differ \(suite commit "aaa" vs "bbb"; provider "local" vs "qemu"; host "h1" vs "h2"\)/);
  assert.match(text, /candidate \(b\) did not finish \(interrupted\)/);
  assert.doesNotMatch(text, /cores/);
});

test('loadRun types every column and allows extra trailing columns', () => {
  const run = loadRun(BASE);
  assert.equal(run.name, 'base');
  assert.equal(run.rows.length, 36);
  const timeout = run.rows.find((r) => r.exit_reason === 'timeout')!;
  assert.equal(timeout.http_status, null);
  assert.equal(timeout.throughput_mib_s, null);
  assert.equal(timeout.sha256_ok, null);
  assert.equal(timeout.error, 'no response within 60 s');
  assert.equal(run.rows[0].sha256_ok, true);
  assert.equal(run.rows[0].file_size_bytes, 2 ** 30);
  assert.equal(run.config?.matrix.warmup_iterations, 1);
  const csv = fs.readFileSync(path.join(BASE, 'raw.csv'), 'utf8').split('\n');
  const extra = makeRun(csv.map((l, i) => (l === '' ? l : i === 0 ? `${l},future_column` : `${l},42`)).join('\n'));
  assert.equal(loadRun(extra).rows.length, 36);
});

test('fixture pair: verdicts per case and the geometric mean, worked by hand', () => {
  const c = compareRuns(loadRun(BASE), loadRun(CAND));
  assert.deepEqual(
    c.cases.map((k) => `${k.fileSize}@${k.memoryLimit} ${k.verdict} ${k.failures}`),
    ['1MiB@256MB faster null', '10MiB@256MB slower null', '100MiB@256MB same null', '1GiB@256MB faster fixed', '100MiB@512MB slower regressed'],
  );
  // Median throughput ratios (from the durations in raw.csv): 1MiB 125/100, 10MiB 76.923/100,
  // 100MiB@256 99.502/100, 1GiB 113.778/101.893 (base: iteration 2 timed out, 4 values left),
  // 100MiB@512 83.333/105.263; their geometric mean is 0.96705.
  assert.ok(Math.abs(c.throughputGeomean! - 0.96705) < 5e-5, String(c.throughputGeomean));
  // 1GiB: 4 v 5 fully separated, p = 2 / C(9, 4) = 2/126.
  assert.ok(Math.abs(c.cases[3].metrics[0].p! - 2 / 126) < 1e-12);
  assert.equal(c.exitCode, 1);
});

test('charts: one line per memory limit (and per run), labelled axes with units, log size axis', async () => {
  const lines = (svg: string) => (svg.match(/aria-roledescription="line mark"/g) ?? []).length;
  const base = loadRun(BASE);
  const single = await throughputChartSvg(base.rows, base.config);
  assert.match(single, /^<svg/);
  assert.equal(lines(single), 2, 'base has 256MB and 512MB');
  assert.match(single, /File size \(log scale\)/);
  assert.match(single, /Throughput \(MiB\/s, median\)/);
  for (const label of ['1MiB', '10MiB', '100MiB', '1GiB']) assert.match(single, new RegExp(`>${label}</text>`));
  // Without config.json the default warm-up applies; the chart still renders.
  assert.equal(lines(await throughputChartSvg(base.rows, null)), 2);
  const both = await comparisonChartSvg(base, loadRun(CAND));
  assert.equal(lines(both), 5, 'baseline 256/512MB + candidate 256/512/1024MB');
  assert.match(both, />baseline base</);
  assert.match(both, />candidate cand</);
});

test('bad input: one "Error:" line naming the problem, exit 2', async () => {
  const lines = fs.readFileSync(path.join(BASE, 'raw.csv'), 'utf8').trimEnd().split('\n');
  const header = lines[0];
  assert.ok(header.startsWith(RAW_COLUMNS.slice(0, 16).join(',')), 'the fixture is a schema-1 raw.csv');
  const truncated = makeRun(`${lines.join('\n')}\n${lines[1].split(',').slice(0, 7).join(',')}`);
  const nonNumber = makeRun([header, lines[1].replace(',12.0,', ',fast,'), ...lines.slice(2)].join('\n'));
  const badReason = makeRun([header, ...lines.slice(1, 5), lines[5].replace(',success,', ',exploded,'), ...lines.slice(6)].join('\n'));
  const badSchemaCsv = makeRun([header.replace('duration_seconds', 'duration_ms'), ...lines.slice(1)].join('\n'));
  const badSchemaConfig = makeRun(lines.join('\n'), { schema: 2 });
  const noCsv = makeRun(null);
  const disjoint = makeRun([header, ...lines.slice(1).map((l) => l.replace(',256,', ',8192,').replace(',512,', ',16384,'))].join('\n'));
  const cases: [string[], RegExp][] = [
    [['/nonexistent/run-1', CAND], /^Error: \/nonexistent\/run-1: no such folder\n$/],
    [[noCsv, CAND], /^Error: .*: no raw\.csv in this folder/],
    [[BASE, truncated], /^Error: .*raw\.csv line 38: 7 of 16 columns \(truncated or malformed row\)\n$/],
    [[nonNumber, CAND], /^Error: .*raw\.csv line 2, column duration_seconds: "fast" is not a number\n$/],
    [[BASE, badReason], /^Error: .*raw\.csv line 6, column exit_reason: "exploded" is not one of success, timeout, /],
    [[badSchemaCsv, CAND], /^Error: .*raw\.csv: unknown schema, header lacks duration_seconds/],
    [[BASE, badSchemaConfig], /^Error: .*config\.json: unknown schema 2 \(this suite reads schema 1\)\n$/],
    [[BASE, disjoint], /^Error: no case in common between .* \(cases are matched on file size and memory limit\)\n$/],
    [[BASE], /^Error: expected two results folders, got 1/],
    [[BASE, CAND, '--alpha', '2'], /^Error: --alpha "2": expected between 0 and 1\n$/],
    [[BASE, CAND, '--bogus'], /^Error: Unknown option '--bogus'/],
  ];
  for (const [argv, want] of cases) {
    const r = await runMain(argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
    assert.match(r.stderr, want);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    assert.equal(r.stdout, '');
  }
});

test('the real ./compare-runs: bad input exits 2; a regression exits 1 and prints the folder last', async () => {
  const exe = path.join(SUITE, 'compare-runs');
  const missing = await $({ nothrow: true, quiet: true, cwd: os.tmpdir() })`${exe} /nonexistent/run-1 ${CAND}`;
  assert.equal(missing.exitCode, 2);
  assert.equal(missing.stderr, 'Error: /nonexistent/run-1: no such folder\n');
  const lines = fs.readFileSync(path.join(BASE, 'raw.csv'), 'utf8').trimEnd().split('\n');
  const truncated = makeRun(`${lines.join('\n')}\n1GiB,256MB,12.0`);
  const trunc = await $({ nothrow: true, quiet: true })`${exe} ${BASE} ${truncated}`;
  assert.equal(trunc.exitCode, 2);
  assert.match(trunc.stderr, /^Error: .*raw\.csv line 38: 3 of 16 columns/);

  const out = path.join(tmpDir(), 'cmp');
  const r = await $({ nothrow: true, quiet: true })`${exe} ${BASE} ${CAND} --out ${out}`;
  assert.equal(r.exitCode, 1, r.stderr);
  const stdoutLines = r.stdout.trimEnd().split('\n');
  assert.equal(stdoutLines.at(-1), out);
  assert.ok(fs.existsSync(path.join(out, 'compare.md')));
  const svg = fs.readFileSync(path.join(out, 'throughput.svg'), 'utf8');
  assert.match(svg, /^<svg/);
  assert.match(svg, /File size \(log scale\)/);
  assert.match(svg, /Throughput \(MiB\/s, median\)/);

  const help = await $({ nothrow: true, quiet: true })`${exe} --help`;
  assert.equal(help.exitCode, 0);
  for (const flag of ['--alpha', '--noise', '--out', '--help']) assert.match(help.stdout, new RegExp(flag));
  const short = await $({ nothrow: true, quiet: true })`${exe} -h`;
  assert.equal(short.exitCode, 0, short.stderr);
  assert.equal(short.stdout, help.stdout);
});

test('golden compare.md for the fixture pair', async () => {
  const out = path.join(tmpDir(), 'cmp');
  const r = await runMain([BASE, CAND, '--out', out]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, `${fs.readFileSync(path.join(out, 'compare.md'), 'utf8')}${out}\n`);
  assertGolden(fs.readFileSync(path.join(out, 'compare.md'), 'utf8'), 'compare');
});

test('two sides of one interleaved run are compared round by round (paired); a recorded stopping rule judges throughput', async () => {
  // Drift of +-30% across rounds hits both sides of a round alike; the candidate is 8% slower in every round.
  const drift = [1, 1.3, 0.7, 1.2, 0.8, 1.25, 0.75, 1.1, 0.9, 1.3, 0.7];
  const baseRows = durations(drift);
  const candRows = durations(drift.map((x, i) => x * (1.08 + (i % 3) * 0.002)));
  const side = (i: number, extra: object = {}) => ({ schema: 1, matrix: { warmup_iterations: 1 }, ab: { refs: ['a', 'b'], this_ref: i, seed: 1, parent: '/r/x', ...extra } });
  const paired = compareRuns(run('a', baseRows, side(0)), run('b', candRows, side(1)));
  assert.equal(paired.cases[0].paired, true);
  assert.equal(paired.cases[0].metrics[0].change!.method, 'paired');
  assert.equal(paired.cases[0].verdict, 'slower');
  // 10 pairs all slower: exact signed-rank p = 2 / 2^10.
  assert.ok(Math.abs(paired.cases[0].metrics[0].p! - 2 / 1024) < 1e-12);
  // The same rows as separate runs: the drift swamps the change.
  const separate = compareRuns(run('a', baseRows), run('b', candRows));
  assert.equal(separate.cases[0].paired, false);
  assert.equal(separate.cases[0].verdict, 'inconclusive');
  // Sides of different interleaved runs are not paired.
  assert.equal(compareRuns(run('a', baseRows, side(0)), run('b', candRows, { ...side(1), ab: { this_ref: 1, parent: '/r/y' } } as RunInput['config'])).cases[0].paired, false);

  // With a stopping rule recorded, throughput is judged as the rule judged it: its rounds replayed (looks 6 and 10).
  const rule = stoppingRule({ alpha: 0.05, noisePct: 3, family: familyOf([`${10 * 2 ** 20}@256`], 2), maxRounds: 10 });
  const seq = compareRuns(run('a', baseRows, side(0, { stopping_rule: rule })), run('b', candRows, side(1, { stopping_rule: rule })));
  assert.equal(seq.cases[0].rounds, 10);
  assert.equal(seq.stoppingRule?.looks.join(), '6,10');
  assert.equal(seq.cases[0].verdict, 'slower', 'at 10 rounds p = 2/1024 is below the last look level');
  const json = JSON.parse(compareJson(seq));
  assert.equal(json.cases[0].rounds, 10);
  assert.equal(json.cases[0].metrics.throughput_mib_s.method, 'paired');
  assert.equal(json.cases[0].metrics.throughput_mib_s.interval_pct.length, 2);
  const md = renderCompare(seq, fs.readFileSync(path.join(SUITE, 'templates', 'compare.md.mustache'), 'utf8'), 'x.svg');
  assert.match(md, /\| 10MiB \| 256MB \| 10 rounds \| .* \| -7\.\d% \[-\d+\.\d%, -\d\.\d%\] \| [\d.]+ \| slower \|/);
  assert.match(md, /paired by round/);
});

test('canaries: two separate runs on a machine that changed by more than the noise band say so, and a change it could explain is inconclusive', () => {
  const canary = (cpu: number, disk: number) => [1, 2, 3].map((i) => ({ at: `t${i}`, before_case: 'c', cpu_seconds: cpu * (1 + i / 1000), disk_seconds: disk }));
  // The candidate's throughput fell 8%; its machine ran the canary 10% slower on CPU.
  const base = { ...run('a', durations([1, 1, 1.01, 0.99, 1, 1.02, 0.98, 1, 1.01, 0.99])), canary: canary(1, 0.5) };
  const cand = { ...run('b', durations([1.087, 1.087, 1.098, 1.076, 1.087, 1.109, 1.065, 1.087, 1.098, 1.076])), canary: canary(1.1, 0.5) };
  const quiet = compareRuns({ ...base, canary: [] }, { ...cand, canary: [] });
  assert.equal(quiet.cases[0].verdict, 'slower', 'without canaries the drop is a slowdown');
  const c = compareRuns(base, cand);
  assert.ok(c.machineShift && Math.abs(c.machineShift.cpuPct - 10) < 0.1, JSON.stringify(c.machineShift));
  assert.equal(c.machineShift.explained, 1);
  assert.equal(c.cases[0].verdict, 'inconclusive');
  assert.equal(c.exitCode, 0);
  assert.match(c.warnings[0], /^The machine itself changed between the runs: its canary .* ran 10\.0% slower on CPU and 0\.0% faster on disk/);
  // A drop far beyond the machine's change still counts; and a steady machine changes nothing.
  const big = { ...run('b', durations([1.5, 1.5, 1.52, 1.48, 1.5, 1.53, 1.47, 1.5, 1.51, 1.49])), canary: canary(1.1, 0.5) };
  assert.equal(compareRuns(base, big).cases[0].verdict, 'slower');
  assert.equal(compareRuns(base, { ...cand, canary: canary(1.01, 0.5) }).machineShift, null);
});

test('spend metrics: CPU per GiB, write and space amplification, download; the summary names the steadiest that changed', { timeout: 60_000 }, () => {
  const GiB = 2 ** 30;
  // Seeded jitter: throughput ±8% (a shared machine's wall time), the server's CPU ±1%.
  let seed = 7;
  const jitter = (pct: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return 1 + ((seed / 2 ** 31) * 2 - 1) * pct / 100; };
  const side = (cpu: number, written: number, duration: number) => Array.from({ length: 9 }, (_, i) => row({
    iteration: i + 1, file_size: '1GiB', file_size_bytes: GiB, duration_seconds: duration * jitter(8),
    server_cpu_user_seconds: cpu * 0.8 * jitter(1), server_cpu_system_seconds: cpu * 0.2, server_write_bytes: written,
    data_dir_bytes: GiB + 4096, download_mib_s: 400 * jitter(2),
  }));
  const base: RunInput = { name: 'a', config: null, rows: side(2.0, 2 * GiB, 10) };
  const cand: RunInput = { name: 'b', config: null, rows: side(2.4, GiB, 10.3) };
  const c = compareRuns(base, cand);
  const byKey = Object.fromEntries(c.cases[0].metrics.map((m) => [m.metric.key, m]));
  assert.equal(byKey.cpu_seconds_per_gib.verdict, 'more');
  assert.ok(Math.abs(byKey.cpu_seconds_per_gib.base!.median - 2.0) < 0.05, `${byKey.cpu_seconds_per_gib.base!.median} s/GiB`);
  assert.equal(byKey.write_amplification.verdict, 'less');
  assert.equal(byKey.write_amplification.cand!.median, 1);
  assert.equal(byKey.space_amplification.verdict, 'same');
  assert.notEqual(byKey.throughput_mib_s.verdict, 'slower', 'a 3% change in ±8% noise is not called');
  // Write amplification changed with no spread at all: the steadiest.
  assert.equal(c.steadiestChange?.metric.key, 'write_amplification');
  const md = renderCompare(c, fs.readFileSync(path.join(SUITE, 'templates', 'compare.md.mustache'), 'utf8'), 'x.svg');
  assert.match(md, /Steadiest metric that changed: Write amplification[^\n]*1GiB @ 256MB: less -50\.0%/);
  assert.match(md, /Server CPU per GiB uploaded/);
  // Without the write change, CPU (±1%) is the steadiest change, not throughput.
  const c2 = compareRuns(base, { name: 'b', config: null, rows: side(2.4, 2 * GiB, 10.3) });
  assert.equal(c2.steadiestChange?.metric.key, 'cpu_seconds_per_gib');
});
