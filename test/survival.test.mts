// "Did it survive?" answered right in every phase: real cgroup OOM kills,
// provoked through ./run-tests, at the server's start, during the upload, and
// after the upload's 200 while the suite reads the file back; each is
// oom_killed with its phase and the kernel's own lines, and compare-runs counts
// every one of them as a failure to survive.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { compareRuns } from '../lib/stats/compare.ts';
import { parseRawCsv } from '../lib/results.ts';
import { leftovers, machineCanMakeMemoryCgroups, rawCsvText, startRun } from './run-helpers.mts';
import { row } from './raw-row.mts';
import { needs } from './skips.mts';

const NO_CGROUP = 'this machine lets no memory cgroup be made (needs root and the cgroup memory controller): no OOM kill can be provoked';

async function run(args: string[], env: Record<string, string>) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-survival-'));
  const secret = `survival-${process.pid}-${Date.now()}`;
  const r = startRun(args, { PS_SHARED_SECRET: secret, ...env }, out);
  const exit = await r.exited;
  assert.equal(exit.code, 0, r.stderr());
  const dir = r.runDir()!;
  const result = {
    rows: parseRawCsv(rawCsvText(dir), 'raw.csv'),
    failures: fs.readFileSync(path.join(dir, 'failures.log'), 'utf8'),
    report: fs.readFileSync(path.join(dir, 'report.md'), 'utf8'),
    left: leftovers(secret, r.pid),
    pid: r.pid,
  };
  fs.rmSync(out, { recursive: true, force: true });
  return result;
}

/** The failures.log entry of one case, e.g. "40MB 13MiB iteration 1". */
const entry = (log: string, name: string) => log.split(/^(?==== )/m).find((e) => e.includes(` ${name}: `)) ?? '';

describe('survival phases', { timeout: 300_000 }, () => {
  test('an OOM kill during the upload and one during verification (after the 200) are both oom_killed, with phase and kernel lines', async (t) => {
    if (!machineCanMakeMemoryCgroups()) return t.skip(needs('root', NO_CGROUP));
    // A stand-in holding every byte in a 40 MB cgroup: 48 MiB cannot all arrive (killed mid-body, measured 25 of
    // 48 MiB sent); 13 MiB arrives and is stored (200), and reading it back tips the server over the limit.
    const r = await run(['--sizes', '48MiB,13MiB', '--memory', '40', '--iterations', '1'], { STANDIN_HOLD_IN_MEMORY: '1' });
    const bySize = new Map(r.rows.map((x) => [x.file_size, x]));
    const up = bySize.get('48MiB')!;
    const verify = bySize.get('13MiB')!;
    assert.deepEqual([up.exit_reason, up.failure_phase], ['oom_killed', 'upload'], up.error);
    assert.deepEqual([verify.exit_reason, verify.failure_phase], ['oom_killed', 'verification'], verify.error);
    assert.equal(verify.http_status, 200, 'the upload itself was answered 200');
    assert.equal(verify.throughput_mib_s, null, 'a server killed afterwards gives no throughput');
    assert.match(verify.error, /killed for memory after the upload's 200, during verification/);
    for (const [name, phase] of [['40MB 48MiB iteration 1', 'upload'], ['40MB 13MiB iteration 1', 'verification']]) {
      const e = entry(r.failures, name);
      assert.match(e, new RegExp(`: oom_killed\nerror: [^\n]*\nphase: ${phase}\n`), e);
      // This kill's own kernel lines: they name this run's cgroup.
      assert.match(e.split('--- server log tail')[0], new RegExp(`kernel OOM lines:[\\s\\S]*/upload-perf-suite-${r.pid}-40\\b`), e);
    }
    assert.match(r.report, /1× oom_killed \(verification\)/);
    assert.deepEqual(r.left, []);
  });

  test('an OOM kill while the server starts is oom_killed (start), not not_ready', async (t) => {
    if (!machineCanMakeMemoryCgroups()) return t.skip(needs('root', NO_CGROUP));
    const r = await run(['--sizes', '4MiB', '--memory', '4', '--iterations', '1'], {});
    assert.equal(r.rows.length, 1);
    assert.deepEqual([r.rows[0].exit_reason, r.rows[0].failure_phase], ['oom_killed', 'start'], r.rows[0].error);
    assert.match(r.rows[0].error, /killed for memory while starting/);
    const e = entry(r.failures, '4MB 4MiB iteration 1');
    assert.match(e, /: oom_killed\nerror: [^\n]*\nphase: start\n/);
    assert.match(e.split('--- server log tail')[0], new RegExp(`kernel OOM lines:[\\s\\S]*/upload-perf-suite-${r.pid}-4\\b`), e);
    assert.deepEqual(r.left, []);
  });
});

test('compare-runs counts an OOM kill in any phase as a failure to survive', () => {
  const ok = [1, 2, 3].map((iteration) => row({ iteration, duration_seconds: 1 }));
  for (const phase of ['start', 'upload', 'processing', 'verification'] as const) {
    // Verification follows a 200: the row keeps its status and duration, and is still not a survival.
    const killed = ok.map((r) => (r.iteration === 3 ? { ...r, exit_reason: 'oom_killed' as const, failure_phase: phase } : r));
    const c = compareRuns({ name: 'a', config: null, rows: ok }, { name: 'b', config: null, rows: killed });
    assert.equal(c.cases[0].failures, 'regressed', phase);
    assert.equal(c.exitCode, 1, phase);
  }
});
