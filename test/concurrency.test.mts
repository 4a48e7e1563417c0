// Uploads at once: the matrix's concurrency list and --concurrency, cases keyed
// on (size, memory limit, concurrency) everywhere; a whole run with
// --concurrency 1,4 against the stand-in; and a real cgroup OOM kill of a
// stand-in holding four uploads in memory where one at a time fits.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { main } from '../run-tests.mts';
import { caseKey, caseSide, groupCases, iterationRows } from '../lib/cases.ts';
import { runIteration } from '../lib/iteration.ts';
import { LocalProvider } from '../lib/providers/local.ts';
import { expandCases, parseMatrix } from '../lib/matrix.ts';
import { parseOptions } from '../lib/options.ts';
import { parseRawCsv, parseSamplesCsv, rawCsvHeader, RAW_COLUMNS } from '../lib/results.ts';
import { planResume } from '../lib/resume.ts';
import { ensureTestFile } from '../lib/testfiles.ts';
import { MiB } from '../lib/units.ts';
import { row } from './raw-row.mts';
import { machineCanMakeMemoryCgroups } from './run-helpers.mts';
import { needs } from './skips.mts';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-concurrency-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

test('matrix and flags: concurrency defaults to [1], a list makes one case per entry, bad values name the key', () => {
  const base = 'sizes: [1MiB]\nmemory_limits: [256]\niterations: 2\n';
  assert.deepEqual(parseMatrix(base, 'm.yaml').concurrency, [1]);
  const m = parseMatrix(`${base}concurrency: [1, 4]\n`, 'm.yaml');
  assert.deepEqual(expandCases(m).map((c) => `${c.concurrency ?? 1}/${c.iteration}`), ['1/1', '1/2', '4/1', '4/2']);
  assert.throws(() => parseMatrix(`${base}concurrency: [0]\n`, 'm.yaml'), /m\.yaml:4: concurrency: /);
  assert.throws(() => parseMatrix(`${base}concurrency: [4, 4]\n`, 'm.yaml'), /concurrency: given twice/);
  const o = parseOptions(['--quick', '--concurrency', '1,4']);
  assert.ok(o !== 'help');
  assert.deepEqual(o.matrix.concurrency, [1, 4]);
  assert.throws(() => parseOptions(['--quick', '--concurrency', '1,x']), /--concurrency: /);
});

test('an old raw.csv (no concurrency column) reads as 1; cases and resume keep uploads at once apart', () => {
  const old = RAW_COLUMNS.slice(0, 17).join(',') + '\n1MiB,256MB,1,,200,success,1,1048576,256,,,,,,,,\n';
  assert.equal(parseRawCsv(old, 'raw.csv')[0].concurrency, 1);
  assert.ok(rawCsvHeader().trim().split(',').includes('concurrency'));
  const rows = [row({ iteration: 1 }), row({ iteration: 1, concurrency: 4 }), row({ iteration: 1, concurrency: 4 })];
  assert.deepEqual([...groupCases(rows).keys()], [caseKey(rows[0]), caseKey(rows[1])]);
  assert.notEqual(caseKey(rows[0]), caseKey(rows[1]));
  const m = parseMatrix('sizes: [10MiB]\nmemory_limits: [256]\niterations: 1\nconcurrency: [1, 4]\n', 'm.yaml');
  const plan = planResume(expandCases(m), [rows[0]]);
  assert.deepEqual(plan.remaining.map((c) => c.concurrency), [4]);
});

test('iterationRows: N uploads are one iteration: slowest duration, aggregate throughput, any failure fails it', () => {
  const ok = (d: number) => row({ iteration: 2, concurrency: 4, duration_seconds: d, download_mib_s: d * 10 });
  const [agg] = iterationRows([ok(1), ok(2), ok(4), ok(3)]);
  assert.equal(agg.duration_seconds, 4);
  assert.equal(agg.throughput_mib_s, 10); // 4 x 10 MiB in 4 s
  assert.equal(agg.download_mib_s, 25);
  const [bad] = iterationRows([ok(1), { ...ok(2), exit_reason: 'oom_killed', error: 'cut' }, ok(3), ok(3)]);
  assert.equal(bad.exit_reason, 'oom_killed');
  assert.match(bad.error, /^1 of 4 uploads failed \(oom_killed\): cut/);
  assert.equal(caseSide([ok(1), ok(2), ok(1), ok(1)], null).successes.length, 1);
});

describe('uploads at once, for real', { timeout: 600_000 }, () => {
  test('run-tests --concurrency 1,4 against the stand-in completes: a row per upload, the x4 case in the report', async () => {
    const out = path.join(scratch, 'run');
    let stderr = '';
    let stdout = '';
    const code = await main(['--quick', '--sizes', '16MiB', '--memory', '512', '--iterations', '2', '--concurrency', '1,4', '--out', out],
      { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
    assert.equal(code, 0, stderr);
    const dir = stdout.trim().split('\n').at(-1)!;
    const rows = parseRawCsv(fs.readFileSync(path.join(dir, 'raw.csv'), 'utf8'), 'raw.csv');
    assert.deepEqual(rows.map((r) => `${r.concurrency}/${r.iteration} ${r.exit_reason}`),
      ['1/1 success', '1/2 success', ...Array(4).fill('4/1 success'), ...Array(4).fill('4/2 success')]);
    // The four of an iteration share the server's figures: CPU and bytes for all four uploads.
    const four = rows.filter((r) => r.concurrency === 4 && r.iteration === 2);
    assert.equal(new Set(four.map((r) => r.server_write_bytes)).size, 1);
    assert.ok(four[0].server_write_bytes! >= 4 * 32 * MiB, `written ${four[0].server_write_bytes} for four 16 MiB uploads`);
    const report = fs.readFileSync(path.join(dir, 'report.md'), 'utf8');
    assert.match(report, /\| 512MB \| 16MiB ×4 \| 1 \(of 2\) \|/);
    // A spool then a store is 2; the server's own small writes (its log, the store's metadata) may add a hundredth (2.01 seen under load).
    const amplification = Number(/\| 512MB \| 16MiB ×4 \| [\d.]+ \| [^|]+ \| (\d+\.\d+) \|/.exec(report)?.[1]);
    assert.ok(Math.abs(amplification - 2) <= 0.05, `write amplification ${amplification} for four spooled uploads, not about 2`);
    assert.ok(fs.existsSync(path.join(dir, 'memory-512MB.svg')));
    const samples = parseSamplesCsv(fs.readFileSync(path.join(dir, 'samples.csv'), 'utf8'), 'samples.csv');
    assert.ok(samples.some((s) => s.concurrency === 4) && samples.some((s) => s.concurrency === 1));
  });

  test('STANDIN_HOLD_IN_MEMORY=1: four 48 MiB uploads at once are OOM-killed in 224 MB where one at a time is not', async (t) => {
    if (!machineCanMakeMemoryCgroups()) return t.skip(needs('root', 'this machine lets no memory cgroup be made: an OOM kill cannot be provoked'));
    const secret = 'concurrency-secret-Hq4';
    const provider = new LocalProvider({ server: { kind: 'standin', env: { STANDIN_HOLD_IN_MEMORY: '1' } }, secret, readinessTimeoutSeconds: 30 }, { say: () => {} });
    const env = await provider.up(224);
    const file = await ensureTestFile(48 * MiB);
    try {
      const run = (concurrency: number) => runIteration({
        env, file, secret, uploadTimeoutSeconds: 120, authTimeoutSeconds: 30,
        testCase: { memoryMb: 224, size: { label: '48MiB', bytes: file.bytes }, concurrency, iteration: 1 },
      });
      const one = await run(1);
      assert.equal(one.row.exit_reason, 'success', one.row.error);
      const four = await run(4);
      assert.equal(four.rows!.length, 4);
      assert.equal(four.row.exit_reason, 'oom_killed', four.row.error);
      assert.ok(four.rows!.every((r) => r.exit_reason === 'oom_killed' && r.concurrency === 4), four.rows!.map((r) => r.exit_reason).join(' '));
      assert.match(four.failure!, /upload 1 of 4: oom_killed/);
      assert.match(four.failure!, /kernel OOM lines:[\s\S]*(memory cgroup out of memory|killed process)/i);
    } finally {
      await provider.close();
    }
  });
});
