// The benchmark's pure parts on literal data (verdicts, the split of a run's
// wall time from its request timings, the printed table), then a real quick
// bench of the figures that need no VM.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { $ } from 'zx';
import { SUITE_DIR } from '../lib/paths.ts';
import { cvPct } from '../lib/stats/stats.ts';
import { overheadSplit, renderTable, requestKind, verdict, type Figure, type Timing } from '../bench/figures.ts';

const fig = (value: number | null, op: '>=' | '<=', target: number): Figure =>
  ({ key: 'k', name: 'n', value, unit: 'x', target: { op, value: target } });

test('verdict: targets are inclusive, an unmeasured or target-less figure is n/a', () => {
  assert.equal(verdict(fig(0.9, '>=', 0.9)), 'pass');
  assert.equal(verdict(fig(0.89, '>=', 0.9)), 'FAIL');
  assert.equal(verdict(fig(10, '<=', 10)), 'pass');
  assert.equal(verdict(fig(10.1, '<=', 10)), 'FAIL');
  assert.equal(verdict(fig(null, '<=', 10)), 'n/a');
  assert.equal(verdict({ ...fig(3, '>=', 1), target: null }), 'n/a');
});

test('requestKind names the requests of an iteration', () => {
  assert.equal(requestKind({ method: 'POST', path: '/api/entry?expiration=2999-12-31T00%3A00%3A00Z' }), 'upload');
  assert.equal(requestKind({ method: 'GET', path: '/-abcdefghij' }), 'verify');
  assert.equal(requestKind({ method: 'GET', path: '/' }), 'readiness');
  assert.equal(requestKind({ method: 'POST', path: '/api/auth' }), 'auth');
  assert.equal(requestKind({ method: 'DELETE', path: '/api/entry/abcdefghij' }), 'delete');
});

test('overheadSplit: two iterations, every gap attributed, overhead = outside uploads and verification', () => {
  const t = (method: string, path: string, startMs: number, endMs: number): Timing => ({ method, path, startMs, endMs, ok: true });
  const timings: Timing[] = [];
  for (const at of [1000, 6000]) {
    timings.push(
      t('GET', '/', at, at + 10), t('GET', '/', at + 30, at + 40), // one failed poll, 20 ms sleep, ready
      t('POST', '/api/auth', at + 40, at + 50),
      t('POST', '/api/entry?expiration=x', at + 60, at + 2060),
      t('GET', '/-id', at + 2070, at + 3070),
      t('DELETE', '/api/entry/id', at + 3080, at + 3090),
    );
  }
  const s = overheadSplit(10, [...timings].reverse()); // order of the input does not matter
  assert.equal(s.uploads, 2);
  const near = (a: number | undefined, b: number) => assert.ok(Math.abs((a ?? NaN) - b) < 1e-9, `${a} != ${b}`);
  near(s.seconds.upload, 4);
  near(s.seconds.verify, 2);
  near(s.seconds.startup, 1);
  near(s.seconds.readiness, 0.08); // 2 x (10 + 20 + 10 ms)
  near(s.seconds.restart, 6000 / 1000 - 3.09 - 1); // last delete of the first iteration to the next first poll
  near(s.seconds.sampling, 0.02);
  near(s.seconds['after upload'], 0.02);
  near(s.seconds['after verify'], 0.02);
  near(s.seconds.teardown, 10 - 9.09);
  const total = Object.values(s.seconds).reduce((a, b) => a + (b ?? 0), 0);
  near(total, 10);
  near(s.overheadPct, 40);
});

test('renderTable: one row per figure with value, target and verdict; details below', () => {
  const text = renderTable([
    { ...fig(0.93, '>=', 0.9), name: 'client vs curl', detail: 'median of 5' },
    { key: 'vm', name: 'VM boot', value: null, unit: 'x', target: { op: '>=', value: 2 }, note: 'not landed' },
  ]);
  const lines = text.split('\n');
  assert.match(lines[0], /^\| figure +\| value +\| target +\| result \|$/);
  assert.match(lines[2], /^\| client vs curl \| 0\.93 x +\| >= 0\.90 x \| pass +\|$/);
  assert.match(lines[3], /^\| VM boot +\| not measured \| >= 2\.00 x \| n\/a +\|$/);
  assert.ok(lines.includes('- client vs curl: median of 5'));
  assert.ok(lines.includes('- VM boot: not landed'));
});

test('npm run bench -- --quick --only gen,run: real dd, generator, run-tests and stand-in; every figure measured, JSON written', { timeout: 1_200_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-bench-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'bench.json');
  const bench = $({ quiet: true, nothrow: true, cwd: SUITE_DIR })`npm run --silent bench -- --quick --only gen,run --out ${out}`;
  // A timed-out test must not leave the bench (its run-tests, servers, dd) running beside the tests after it: zx kills the tree.
  t.signal.addEventListener('abort', () => { try { bench.kill().catch(() => {}); } catch { /* settled meanwhile */ } }, { once: true });
  const r = await bench;
  assert.ok(fs.existsSync(out), `bench exited ${r.exitCode} without its JSON: ${r.stderr.slice(-800)}`);
  assert.match(r.stdout, /\| test file generation vs dd, 512 MiB +\| [\d.]+ x faster/);
  const json = JSON.parse(fs.readFileSync(out, 'utf8')) as { quick: boolean; figures: Figure[] };
  // Its exit follows the figures it wrote: 1 exactly when one misses its target (this machine's noise can do that).
  const missed = json.figures.filter((f) => verdict(f) === 'FAIL').map((f) => `${f.key} ${f.value}`);
  assert.equal(r.exitCode, missed.length > 0 ? 1 : 0, `missed: ${missed.join(', ') || 'none'}; ${r.stderr.slice(-800)}`);
  assert.equal(json.quick, true);
  const byKey = new Map(json.figures.map((f) => [f.key, f]));
  assert.deepEqual([...byKey.keys()].sort(), ['harness_overhead', 'machine_copy_cv', 'machine_cpu_cv', 'machine_vcpu_spread', 'standin_curl_cv', 'testfile_generation', 'throughput_cv']);
  // The generator makes no bytes through the kernel as dd's urandom does: faster on any machine.
  assert.ok(byKey.get('testfile_generation')!.value! > 1, `generation ${byKey.get('testfile_generation')!.value}x dd`);
  assert.match(byKey.get('standin_curl_cv')!.detail!, /median \d+ MiB\/s \[(\d+ ){9}\d+\]/);
  for (const k of ['machine_cpu_cv', 'machine_copy_cv']) assert.match(byKey.get(k)!.detail!, /median [\d.]+ s \[([\d.]+ ){9}[\d.]+\]/);

  // Each figure is computed from its measurements: the samples in the JSON, or the rounded parts its detail prints.
  const near = (key: string, recomputed: number, tolerance: number) => {
    const v = byKey.get(key)!.value!;
    assert.ok(Math.abs(v - recomputed) <= tolerance, `${key}: ${v} but its measurements give ${recomputed}: ${byKey.get(key)!.detail}`);
  };
  // A CV from the unrounded samples in the JSON, and those are the ones its detail prints.
  for (const k of ['throughput_cv', 'standin_curl_cv', 'machine_cpu_cv', 'machine_copy_cv']) {
    const xs = byKey.get(k)!.samples!;
    assert.equal(xs.length, 10, k);
    near(k, cvPct(xs), 1e-9);
    const printed = /\[([\d. ]+)\]/.exec(byKey.get(k)!.detail!)![1].split(' ').map(Number);
    assert.deepEqual(printed, xs.map((x) => Number(x.toFixed(k.startsWith('machine') ? 2 : 0))), k);
  }
  // The vCPU spread: the largest of the per-round slowest/fastest ratios it prints, one per CPU time it lists.
  const spread = byKey.get('machine_vcpu_spread')!;
  assert.equal(spread.samples!.length, 10);
  assert.ok(spread.samples!.every((x) => x >= 1), `ratios ${spread.samples}`);
  near('machine_vcpu_spread', Math.max(...spread.samples!), 1e-9);
  assert.deepEqual(/per round \[([\d. ]+)\]/.exec(spread.detail!)![1].split(' ').map(Number), spread.samples!.map((x) => Number(x.toFixed(2))));
  const perCpu = [...spread.detail!.matchAll(/cpu(\d+) median [\d.]+ s \[([\d. ]+)\]/g)].map((m) => m[2].split(' ').map(Number));
  assert.equal(perCpu.length, os.cpus().length);
  for (let i = 0; i < 10; i++) {
    const times = perCpu.map((xs) => xs[i]);
    const [lo, hi] = [Math.min(...times), Math.max(...times)];
    const tolerance = (hi / lo) * (0.006 / lo + 0.006 / hi); // both printed to 0.01 s
    assert.ok(Math.abs(hi / lo - spread.samples![i]) <= tolerance, `round ${i + 1}: ${times} against ratio ${spread.samples![i]}`);
  }
  const [wall, uploads, verification, outside] = /wall ([\d.]+) s = uploads ([\d.]+) s \+ verification ([\d.]+) s \+ outside ([\d.]+) s/
    .exec(byKey.get('harness_overhead')!.detail!)!.slice(1).map(Number);
  near('harness_overhead', (outside / wall) * 100, 100 * (0.1 / wall));
  assert.ok(Math.abs(uploads + verification + outside - wall) <= 0.15, `${uploads} + ${verification} + ${outside} s against wall ${wall} s`);
  // The uploads' time, from the requests the bench timed, against the run's own raw.csv (its throughputs): the 10
  // measured iterations of 64 MiB take sum(64 / MiB/s); the warm-up adds one more, at most 3x the slowest of them.
  const perUpload = byKey.get('throughput_cv')!.samples!.map((x) => 64 / x);
  const measuredSum = perUpload.reduce((a, b) => a + b, 0);
  assert.ok(uploads >= measuredSum - 0.1 && uploads <= measuredSum + 3 * Math.max(...perUpload) + 0.1,
    `uploads ${uploads} s by the request timings; raw.csv: ${measuredSum.toFixed(2)} s for the 10 measured (${perUpload.map((x) => x.toFixed(2)).join(' ')})`);
  const [suite, dd] = /suite \(lib\/testfiles.ts writeTestFile\) ([\d.]+) s .*?, dd ([\d.]+) s/.exec(byKey.get('testfile_generation')!.detail!)!.slice(1).map(Number);
  near('testfile_generation', dd / suite, (dd / suite) * (0.006 / suite + 0.006 / dd)); // both printed to 0.01 s
});
