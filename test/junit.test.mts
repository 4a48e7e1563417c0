// --junit: the verdicts as JUnit XML for a CI's test view. The renderer on
// literal data (escaping, counts), the fixture pair's comparison case by case,
// compare-runs --junit, and a two-server stand-in run with one case slowed
// (STANDIN_SLOWDOWN_MIN_BYTES): that case fails, the others pass or are
// skipped. Every file is validated against the JUnit schema Jenkins documents
// and read back with a real XML parser.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { main as compareMain } from '../compare-runs.mts';
import { main as runTests } from '../run-tests.mts';
import { compareRuns } from '../lib/stats/compare.ts';
import { comparisonSuite, renderJunit } from '../lib/render/junit.ts';
import { loadRun } from '../lib/load-run.ts';
import { parseMatrix } from '../lib/matrix.ts';
import { RUNS } from './golden.mts';
import { assertValidJunit, parseJunit } from './junit-helpers.mts';
import { serverWrapper } from './run-helpers.mts';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-junit-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));
const quiet = () => ({ out: '', err: '', io: null as any });
function io() {
  const o = quiet();
  o.io = { stdout: { write: (s: string) => (o.out += s) }, stderr: { write: (s: string) => (o.err += s) } };
  return o;
}

test('renderJunit: escapes what XML cannot hold as is, counts per suite and overall, validates against the schema', async () => {
  const xml = renderJunit([
    { name: 'a <&> "b"', timestamp: '2026-12-06T20:00:00.000Z', properties: { note: 'x & y' }, cases: [
      { classname: 'c', name: 'one\nline', outcome: 'failed', message: 'slower: -9% [-12%, -6%] <p>\u0001', details: 'body & more' },
      { classname: 'c', name: 'two', outcome: 'skipped', message: 'inconclusive' },
      { classname: 'c', name: 'three', outcome: 'passed', message: 'same' },
    ] },
    { name: 'empty', cases: [] },
  ]);
  await assertValidJunit(xml);
  const { suites, cases } = parseJunit(xml);
  assert.deepEqual(suites.map((s) => s.name), ['a <&> "b"', 'empty']);
  assert.equal(suites[0].properties.property[0].value, 'x & y');
  assert.deepEqual(cases.map((c) => [c.name, c.outcome, c.message, c.text]), [
    ['one line', 'failed', 'slower: -9% [-12%, -6%] <p>', 'body & more'],
    ['two', 'skipped', 'inconclusive', null],
    ['three', 'passed', null, 'same'],
  ]);
  assert.match(xml, /<testsuites name="upload-perf" tests="3" failures="1" errors="0">/);
});

/** The fixture pair's throughput and failure testcases that must fail; every other testcase passes (no fixture case is inconclusive). */
const FIXTURE_FAILED: Record<string, RegExp> = {
  '10MiB @ 256MB: Throughput': /^slower: -23\.1% \[-24\.2%, -21\.7%\], p \(adj\.\) 0\.040$/,
  '100MiB @ 512MB: Throughput': /^slower: -20\.8% \[-21\.7%, -20\.0%\], p \(adj\.\) 0\.048$/,
  '100MiB @ 512MB: failures': /^regressed: 1\/6 failed vs 0\/6 in the baseline \(oom_killed\)$/,
};

test('the fixture pair: a testcase per case and metric with a verdict, failed exactly where the comparison regressed', async () => {
  const c = compareRuns(loadRun(path.join(RUNS, 'base')), loadRun(path.join(RUNS, 'cand')));
  const xml = renderJunit([comparisonSuite(c)]);
  await assertValidJunit(xml);
  const { suites, cases } = parseJunit(xml);
  assert.equal(suites[0].name, 'upload-perf: cand against base');
  assert.equal(suites[0].timestamp, '2026-11-24T10:15:00.000Z');
  const withVerdict = c.cases.reduce((n, k) => n + k.metrics.filter((m) => m.verdict !== null).length + (k.failures ? 1 : 0), 0);
  assert.equal(cases.length, withVerdict);
  assert.ok(cases.length >= 5 * 5, `every case has several metrics judged (${cases.length})`);
  for (const tc of cases) {
    assert.equal(tc.classname, 'upload-perf.cand');
    const want = FIXTURE_FAILED[tc.name];
    if (want) {
      assert.equal(tc.outcome, 'failed', tc.name);
      assert.match(tc.message!, want, tc.name);
    } else {
      assert.equal(tc.outcome, 'passed', `${tc.name}: ${tc.message}`);
      // A passed case says its verdict and the change with its interval (or that none was computed).
      assert.match(tc.text!, /^(faster|slower|same|less|more|fixed)(: [+-]\d+\.\d% \[[^\]]+\], p \(adj\.\) [\d.<]+|: 0\/6 failed vs 1\/6 in the baseline)( \(reported, not failed: throughput and failures decide, as the exit code does\))?$/, tc.name);
      // A worse secondary metric passes, saying why.
      assert.equal(/^(slower|more)/.test(tc.text!), tc.text!.endsWith('as the exit code does)'), tc.name);
    }
  }
  assert.deepEqual(cases.filter((x) => x.outcome === 'failed').map((x) => x.name).sort(), Object.keys(FIXTURE_FAILED).sort());
});

test('an ignored case is skipped with its reason; a case with its own noise band carries the band', async () => {
  const m = parseMatrix([
    'sizes: [1GiB, 100MiB, 10MiB, 1MiB]', 'memory_limits: [1024, 512, 256]',
    'judgment:', '  - match: {size: 100MiB, memory_limit: 512}', '    ignore: true', '    reason: OOM at 512 MB is known (#12)',
    '  - match: {size: 10MiB, memory_limit: 256}', '    noise: 25',
  ].join('\n'), 'matrix.yaml');
  const cand = loadRun(path.join(RUNS, 'cand'));
  cand.config = { ...cand.config!, matrix: { ...cand.config!.matrix, judgment: m.judgment } };
  const c = compareRuns(loadRun(path.join(RUNS, 'base')), cand);
  const xml = renderJunit([comparisonSuite(c)]);
  await assertValidJunit(xml);
  const { cases } = parseJunit(xml);
  const ignored = cases.filter((x) => x.name.startsWith('100MiB @ 512MB'));
  assert.ok(ignored.length > 2);
  for (const x of ignored) {
    assert.equal(x.outcome, 'skipped');
    assert.match(x.message!, /^ignored: OOM at 512 MB is known \(#12\) \(judged (slower|more|less|faster|same|regressed)/);
  }
  const banded = cases.find((x) => x.name === '10MiB @ 256MB: Throughput')!;
  assert.equal(banded.outcome, 'passed');
  assert.equal(banded.text, 'same (noise band ±25%): -23.1% [-24.2%, -21.7%], p (adj.) 0.040');
  assert.equal(cases.filter((x) => x.outcome === 'failed').length, 0);
  assert.equal(c.exitCode, 0);
});

test('compare-runs --junit FILE writes the file (its folder made); a folder as FILE is refused', async () => {
  const file = path.join(scratch, 'deep', 'junit.xml');
  const o = io();
  assert.equal(await compareMain([path.join(RUNS, 'base'), path.join(RUNS, 'cand'), '--out', path.join(scratch, 'cmp'), '--junit', file], o.io), 1, o.err);
  const xml = fs.readFileSync(file, 'utf8');
  await assertValidJunit(xml);
  assert.equal(parseJunit(xml).cases.filter((x) => x.outcome === 'failed').length, 3);
  const bad = io();
  assert.equal(await compareMain([path.join(RUNS, 'base'), path.join(RUNS, 'cand'), '--out', path.join(scratch, 'cmp2'), '--junit', scratch], bad.io), 2);
  assert.match(bad.err, /--junit .*: is a folder; give a file name/);
});

test('run-tests --junit needs two servers', async () => {
  const o = io();
  assert.equal(await runTests(['--quick', '--junit', path.join(scratch, 'x.xml')], o.io), 2);
  assert.match(o.err, /--junit: needs two or more --ref or --binary/);
});

test('two stand-ins as --binary, the second slowed 100% for uploads of 4 MiB or more: the 8MiB case fails, the 1MiB case passes or is skipped', { timeout: 600_000 }, async () => {
  const a = await serverWrapper(scratch, 'base', '');
  const b = await serverWrapper(scratch, 'slowed', 'export STANDIN_SLOWDOWN_PCT=100\nexport STANDIN_SLOWDOWN_MIN_BYTES=4194304');
  const file = path.join(scratch, 'run-junit.xml');
  const o = io();
  // The default cap (48 rounds): on a loaded machine the stand-ins' rounds can be serially correlated (seen: lag-1 0.48),
  // and the rule, widening its looks for that, may need more than 16 rounds even for a 100% slowdown.
  const code = await runTests(['--binary', a, '--binary', b, '--sizes', '8MiB,1MiB', '--memory', '512', '--provider', 'local',
    '--out', scratch, '--seed', '11', '--junit', file], o.io);
  assert.equal(code, 1, o.err);
  const xml = fs.readFileSync(file, 'utf8');
  await assertValidJunit(xml);
  const { suites, cases } = parseJunit(xml);
  assert.equal(suites.length, 1);
  assert.equal(suites[0].name, 'upload-perf: slowed against base');
  const slowed = cases.find((x) => x.name === '8MiB @ 512MB: Throughput')!;
  assert.equal(slowed.outcome, 'failed');
  // Twice as long: throughput about halved, the change and its interval in the message.
  const pct = Number(/^slower: (-\d+\.\d)% \[-\d+\.\d%, -\d+\.\d%\], p \(adj\.\) [\d.<]+$/.exec(slowed.message!)?.[1]);
  assert.ok(pct < -35 && pct > -65, slowed.message!);
  const other = cases.find((x) => x.name === '1MiB @ 512MB: Throughput')!;
  assert.ok(other.outcome === 'passed' || other.outcome === 'skipped', `${other.outcome}: ${other.message}`);
  for (const x of cases.filter((y) => y !== slowed)) assert.notEqual(x.outcome, 'failed', `${x.name}: ${x.message}`);
  for (const x of cases.filter((y) => y.outcome === 'skipped')) assert.match(x.message!, /^inconclusive: /);
  o.err.split('\n').filter((l) => /decided|inconclusive/.test(l)).forEach((l) => console.log(l));
  console.log(cases.map((x) => `${x.outcome.padEnd(7)} ${x.name}: ${x.message ?? x.text}`).join('\n'));
});
