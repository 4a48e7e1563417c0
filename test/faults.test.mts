// Faults inside a run, provoked for real through ./run-tests, each becoming a
// recorded result while the run goes on; and bad input stopped before the run.
// Every test checks the rows, and that no server process, cgroup or data
// folder is left.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseRawCsv } from '../lib/load-run.ts';
import {
  leftovers, matrixFile, mountTmpfs, processesWith, rawCsvText, readConfig, rowCount, serverWrapper, startRun, uploading, waitFor,
} from './run-helpers.mts';

/** A temporary folder, and a list of cleanups run in reverse order at the end (kill a run, unmount, then remove). */
function tempDir(t: TestContext, prefix: string): { dir: string; later: (fn: () => void) => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const cleanups: (() => void)[] = [() => fs.rmSync(dir, { recursive: true, force: true })];
  t.after(() => { for (const fn of cleanups.reverse()) fn(); });
  return { dir, later: (fn) => cleanups.push(fn) };
}

const rows = (dir: string) => parseRawCsv(rawCsvText(dir), 'raw.csv');

test('the disk fills up during an upload: recorded as a failure, the run goes on once space is back', async (t) => {
  const { dir: tmp, later } = tempDir(t, 'ups-diskfull-');
  const mnt = mountTmpfs(path.join(tmp, 'mnt'), 64);
  if (!mnt) return t.skip('cannot mount a tmpfs here (needs root): no small filesystem to fill');
  later(mnt.unmount);
  const secret = `diskfull-${Date.now()}`;
  const run = startRun(['--sizes', '16MiB', '--memory', '512', '--iterations', '3'],
    { PS_SHARED_SECRET: secret, STANDIN_THROTTLE_MIBS: '4', UPS_LOCAL_DATA_DIR: mnt.dir }, path.join(tmp, 'results'));
  later(() => run.child.kill('SIGKILL'));
  await waitFor('the first row', () => rowCount(run.runDir()) >= 1, 120_000);
  await waitFor('the second upload to be in progress', () => uploading(mnt.dir), 60_000);
  // Something else on the host fills the disk: leave 2 MiB, less than the 16 MiB being spooled.
  const ballast = path.join(mnt.dir, 'ballast');
  const st = fs.statfsSync(mnt.dir);
  const fd = fs.openSync(ballast, 'w');
  const chunk = Buffer.alloc(1024 * 1024, 1);
  for (let left = st.bavail * st.bsize - 2 * 1024 * 1024; left > 0; left -= chunk.length) {
    fs.writeSync(fd, chunk, 0, Math.min(chunk.length, left));
  }
  fs.closeSync(fd);
  await waitFor('the second row', () => rowCount(run.runDir()) >= 2, 120_000);
  fs.rmSync(ballast);
  const exit = await run.exited;
  assert.equal(exit.code, 0, run.stderr());
  const dir = run.runDir()!;
  const got = rows(dir);
  assert.deepEqual(got.map((r) => r.exit_reason), ['success', 'http_error', 'success'], JSON.stringify(got.map((r) => r.error)));
  assert.match(got[1].error, /no space left on device|ENOSPC/i);
  assert.match(fs.readFileSync(path.join(dir, 'failures.log'), 'utf8'), /http_error[\s\S]*(ENOSPC|no space left)/i);
  assert.equal(readConfig(dir).finished, true);
  assert.deepEqual(leftovers(secret, run.pid), []);
  assert.deepEqual(fs.readdirSync(mnt.dir), [], 'no data folder left on the filled disk');
});

test('the disk-space check stops a run that cannot fit before anything starts, with the figures (exit 1)', async (t) => {
  const { dir: tmp, later } = tempDir(t, 'ups-diskcheck-');
  const mnt = mountTmpfs(path.join(tmp, 'mnt'), 20);
  if (!mnt) return t.skip('cannot mount a tmpfs here (needs root): no small filesystem to check against');
  later(mnt.unmount);
  const out = path.join(tmp, 'results');
  const data = startRun(['--sizes', '16MiB', '--memory', '512', '--iterations', '1'], { UPS_LOCAL_DATA_DIR: mnt.dir }, out);
  assert.equal((await data.exited).code, 1, data.stderr());
  assert.match(data.stderr(), new RegExp(`Error: not enough disk space for this run:\\n  ${mnt.dir}: 20 MiB free, the run needs about 48 MiB there ` +
    `\\(the server's data: 2 x the largest file \\(16 MiB\\) \\+ 16 MiB: 48 MiB\\)`));
  assert.equal(fs.existsSync(out) ? fs.readdirSync(out).length : 0, 0, 'no results folder was made');

  // Test files not cached yet go to the cache; 24 MiB of them do not fit into 20 MiB.
  const files = startRun(['--sizes', '24MiB', '--memory', '512', '--iterations', '1'], { UPS_CACHE_DIR: mnt.dir }, out);
  assert.equal((await files.exited).code, 1, files.stderr());
  assert.match(files.stderr(), /: [\d.]+ MiB free, the run needs about 24 MiB there \(test files not yet cached \(24 MiB\): 24 MiB\)/);
  assert.ok(!fs.existsSync(path.join(mnt.dir, 'testfiles')), 'no test file was started');
});
