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
import { parseRawCsv } from '../lib/results.ts';
import {
  authFaultServer, cgroupsOf, leftovers, machineCanMakeMemoryCgroups, matrixFile, mountTmpfs, processesWith, rawCsvText, readConfig, rowCount, serverWrapper, startRun, uploading, waitFor, type Run,
} from './run-helpers.mts';
import { needs } from './skips.mts';

/** A temporary folder, and cleanups run in reverse order at the end (stop a run, unmount, then remove). */
function tempDir(t: TestContext, prefix: string): { dir: string; later: (fn: () => unknown) => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const cleanups: (() => unknown)[] = [() => fs.rmSync(dir, { recursive: true, force: true })];
  t.after(async () => { for (const fn of cleanups.reverse()) await fn(); });
  return { dir, later: (fn) => cleanups.push(fn) };
}

/** For a test that fails midway: SIGTERM lets the run clean up after itself (SIGKILL would leave its server). */
const stopRun = (run: Run) => async () => {
  if (run.child.exitCode !== null || run.child.signalCode !== null) return;
  run.child.kill('SIGTERM');
  await run.exited;
};

const rows = (dir: string) => parseRawCsv(rawCsvText(dir), 'raw.csv');

test('the disk fills up during an upload: recorded as a failure, the run goes on once space is back', { timeout: 600_000 }, async (t) => {
  const { dir: tmp, later } = tempDir(t, 'ups-diskfull-');
  const mnt = mountTmpfs(path.join(tmp, 'mnt'), 64);
  if (!mnt) return t.skip(needs('root', 'cannot mount a tmpfs here (needs root): no small filesystem to fill'));
  later(mnt.unmount);
  const secret = `diskfull-${Date.now()}`;
  const run = startRun(['--sizes', '16MiB', '--memory', '512', '--iterations', '3'],
    { PS_SHARED_SECRET: secret, STANDIN_THROTTLE_MIBS: '4', UPS_LOCAL_DATA_DIR: mnt.dir }, path.join(tmp, 'results'));
  later(stopRun(run));
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

test('the disk-space check stops a run that cannot fit before anything starts, with the figures (exit 1)', { timeout: 600_000 }, async (t) => {
  const { dir: tmp, later } = tempDir(t, 'ups-diskcheck-');
  const mnt = mountTmpfs(path.join(tmp, 'mnt'), 20);
  if (!mnt) return t.skip(needs('root', 'cannot mount a tmpfs here (needs root): no small filesystem to check against'));
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
  // The disk check makes the (empty) cache folder, so a cache that cannot hold one is named as such.
  assert.deepEqual(fs.readdirSync(path.join(mnt.dir, 'testfiles', 'splitmix64')), [], 'no test file was started');
});

test('the server killed from outside mid-upload: process_died recorded, the next iterations run on a fresh server', { timeout: 600_000 }, async (t) => {
  const { dir: tmp, later } = tempDir(t, 'ups-killsrv-');
  const data = path.join(tmp, 'data');
  fs.mkdirSync(data);
  const secret = `killsrv-${Date.now()}`;
  const run = startRun(['--sizes', '8MiB', '--memory', '512', '--iterations', '3'],
    { PS_SHARED_SECRET: secret, STANDIN_THROTTLE_MIBS: '6', UPS_LOCAL_DATA_DIR: data }, path.join(tmp, 'results'));
  later(stopRun(run));
  await waitFor('the first row', () => rowCount(run.runDir()) >= 1, 120_000);
  await waitFor('the second upload to be in progress', () => uploading(data), 60_000);
  const servers = processesWith(secret).filter((p) => p.includes(`-db ${data}/`)).map((p) => Number(p.split(':')[0]));
  assert.equal(servers.length, 1, `one server running: ${processesWith(secret).join('; ')}`);
  process.kill(servers[0], 'SIGKILL');
  assert.equal((await run.exited).code, 0, run.stderr());
  const got = rows(run.runDir()!);
  assert.deepEqual(got.map((r) => r.exit_reason), ['success', 'process_died', 'success'], JSON.stringify(got.map((r) => r.error)));
  assert.match(fs.readFileSync(path.join(run.runDir()!, 'failures.log'), 'utf8'), /process_died/);
  assert.equal(readConfig(run.runDir()!).finished, true);
  assert.deepEqual(leftovers(secret, run.pid), []);
  assert.deepEqual(fs.readdirSync(data), []);
});

test('a server that dies on one start (between iterations): not_ready for that iteration, the rest run', { timeout: 600_000 }, async (t) => {
  const { dir: tmp, later } = tempDir(t, 'ups-diestart-');
  const count = path.join(tmp, 'starts');
  const flaky = await serverWrapper(tmp, 'flaky-server', [
    `n=$(cat ${count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${count}`,
    'if [ "$n" -eq 2 ]; then echo "flaky-server: dying on start $n" >&2; exit 3; fi',
  ].join('\n'));
  const secret = `diestart-${Date.now()}`;
  const run = startRun(['--matrix', matrixFile(tmp, { binary: flaky, sizes: ['4MiB'], iterations: 3 })],
    { PS_SHARED_SECRET: secret }, path.join(tmp, 'results'));
  later(stopRun(run));
  assert.equal((await run.exited).code, 0, run.stderr());
  const got = rows(run.runDir()!);
  assert.deepEqual(got.map((r) => r.exit_reason), ['success', 'not_ready', 'success']);
  assert.match(got[1].error, /server exited before it was ready: the process exited with code 3/);
  assert.match(fs.readFileSync(path.join(run.runDir()!, 'failures.log'), 'utf8'), /flaky-server: dying on start 2/);
  assert.deepEqual(leftovers(secret, run.pid), []);
});

// A server that fails at POST /api/auth is a failing server, not a rejected secret (only 401 is): a row, and the run goes on.
for (const [fault, reason, error, seen] of [
  ['500', 'http_error', /^authentication failed: HTTP 500: database is locked$/, /auth-fault-server: POST \/api\/auth: 500/],
  ['exit', 'process_died', /^authentication failed: (other side closed|read ECONNRESET)$/, /auth-fault-server: POST \/api\/auth: exit/],
  // The auth deadline is the readiness timeout, 3 s here.
  ['hang', 'timeout', /^authentication failed: no answer within 3 s$/, /auth-fault-server: POST \/api\/auth: hang/],
] as const) {
  test(`a server that ${{ '500': 'answers 500 to', exit: 'exits on', hang: 'never answers' }[fault]} POST /api/auth on one start: ${reason} for that iteration, the rest run`, { timeout: 600_000 }, async (t) => {
    const { dir: tmp, later } = tempDir(t, `ups-auth-${fault}-`);
    const { binary, requests } = await authFaultServer(tmp, fault, 2);
    const secret = `auth-${fault}-${Date.now()}`;
    const run = startRun(['--matrix', matrixFile(tmp, { binary, sizes: ['4MiB'], iterations: 3, readinessSeconds: 3 })],
      { PS_SHARED_SECRET: secret }, path.join(tmp, 'results'));
    later(stopRun(run));
    // Bounded: before the fix a hanging auth held the run forever.
    await waitFor('the run to end', () => run.child.exitCode !== null || run.child.signalCode !== null, 60_000);
    assert.equal((await run.exited).code, 0, run.stderr());
    assert.equal(fs.readFileSync(requests, 'utf8'), `${fault}\n`, 'the faulty server got the auth request');
    const got = rows(run.runDir()!);
    assert.deepEqual(got.map((r) => [r.iteration, r.exit_reason]), [[1, 'success'], [2, reason], [3, 'success']], JSON.stringify(got.map((r) => r.error)));
    assert.match(got[1].error, error);
    assert.equal(got[1].http_status, null, 'no upload was made');
    const failures = fs.readFileSync(path.join(run.runDir()!, 'failures.log'), 'utf8');
    assert.match(failures, new RegExp(`iteration 2: ${reason}\\nerror: authentication failed: [\\s\\S]*--- server log tail:[\\s\\S]*${seen.source}`));
    assert.equal(readConfig(run.runDir()!).finished, true);
    assert.deepEqual(leftovers(secret, run.pid), []);
  });
}

test('a server whose secret differs: exit 2 "authentication rejected" at once, no rows, nothing left', { timeout: 600_000 }, async (t) => {
  const { dir: tmp, later } = tempDir(t, 'ups-badsecret-');
  const other = await serverWrapper(tmp, 'other-secret-server', 'export PS_SHARED_SECRET=not-the-suites-secret');
  const secret = `badsecret-${Date.now()}`;
  const run = startRun(['--matrix', matrixFile(tmp, { binary: other, sizes: ['8MiB', '4MiB'], memory: [512, 256], iterations: 5 })],
    { PS_SHARED_SECRET: secret }, path.join(tmp, 'results'));
  later(stopRun(run));
  const exit = await run.exited;
  assert.equal(exit.code, 2, run.stderr());
  assert.match(run.stderr(), /^Error: authentication rejected by the server \(HTTP 401\): check PS_SHARED_SECRET$/m);
  const dir = run.runDir()!;
  assert.equal(rowCount(dir), 0, 'no failed cases recorded: it stopped at the first case, not after twenty');
  const config = readConfig(dir);
  assert.equal(config.finished, false);
  assert.match(config.stop_reason, /^authentication rejected/);
  assert.deepEqual(leftovers(secret, run.pid), []);
  for (const f of fs.readdirSync(dir)) assert.ok(!fs.readFileSync(path.join(dir, f), 'utf8').includes(secret), `secret in ${f}`);
});

test('a port taken by another process before the server binds it: the server is started on another port', { timeout: 600_000 }, async (t) => {
  const { dir: tmp, later } = tempDir(t, 'ups-port-');
  const count = path.join(tmp, 'starts');
  const bound = path.join(tmp, 'bound');
  // First start only: another process grabs the port the suite chose, then the server tries it (EADDRINUSE).
  // On the host's network (UPS_LOCAL_NETNS=off), where ports are shared: in a namespace of its own every port is free.
  const grabbed = await serverWrapper(tmp, 'port-grabbed-server', [
    'export STANDIN_HOST=127.0.0.1',
    `n=$(cat ${count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${count}`,
    'if [ "$n" -eq 1 ]; then',
    `  ${process.execPath} -e "require('net').createServer().listen(+process.env.PORT, '127.0.0.1', () => require('fs').writeFileSync('${bound}', process.env.PORT))" &`,
    `  i=0; while [ ! -s ${bound} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done`,
    'fi',
  ].join('\n'));
  const secret = `port-${Date.now()}`;
  const run = startRun(['--matrix', matrixFile(tmp, { binary: grabbed, sizes: ['4MiB'], iterations: 2 })],
    { PS_SHARED_SECRET: secret, UPS_LOCAL_NETNS: 'off' }, path.join(tmp, 'results'));
  later(stopRun(run));
  assert.equal((await run.exited).code, 0, run.stderr());
  const taken = Number(fs.readFileSync(bound, 'utf8'));
  assert.ok(taken > 0, 'the port was grabbed');
  assert.deepEqual(rows(run.runDir()!).map((r) => r.exit_reason), ['success', 'success'], run.stderr());
  assert.equal(fs.readFileSync(count, 'utf8').trim(), '3', 'one extra start, on another port');
  assert.deepEqual(leftovers(secret, run.pid), [], 'the port grabber went with the failed start');
  assert.ok(await new Promise((resolve) => {
    const s = net.createServer().once('error', () => resolve(false)).listen(taken, '127.0.0.1', () => s.close(() => resolve(true)));
  }), `port ${taken} is free again`);
});

test('a run killed with SIGKILL (nothing can clean up) takes its server with it, leaves its cgroup and data folder; the next run sweeps them', { timeout: 600_000 }, async (t) => {
  const { dir: tmp, later } = tempDir(t, 'ups-sigkill-');
  const data = path.join(tmp, 'data');
  fs.mkdirSync(data);
  const secret = `sigkill-${Date.now()}`;
  const run = startRun(['--sizes', '8MiB', '--memory', '512', '--iterations', '3'],
    { PS_SHARED_SECRET: secret, STANDIN_THROTTLE_MIBS: '2', UPS_LOCAL_DATA_DIR: data }, path.join(tmp, 'results'));
  await waitFor('an upload in progress', () => uploading(data), 120_000);
  run.child.kill('SIGKILL');
  await run.exited;
  later(() => { for (const p of processesWith(secret)) { try { process.kill(Number(p.split(':')[0]), 'SIGKILL'); } catch { /* gone */ } } });
  // The server was started through setpriv --pdeathsig KILL (lib/providers/reaper.ts): the kernel kills it with the suite.
  await waitFor('the server to die with the suite', () => processesWith(secret).length === 0, 3000);
  if (!machineCanMakeMemoryCgroups()) return t.skip(needs('root', 'this machine lets no memory cgroup be made: nothing to sweep'));
  assert.ok(cgroupsOf(run.pid).length > 0, 'the killed run left its memory cgroup');

  const next = startRun(['--sizes', '1MiB', '--memory', '512', '--iterations', '1'], { UPS_LOCAL_DATA_DIR: data }, path.join(tmp, 'results2'));
  later(stopRun(next));
  assert.equal((await next.exited).code, 0, next.stderr());
  assert.match(next.stderr(), new RegExp(`removed /sys/fs/cgroup/\\S*upload-perf-suite-${run.pid}-512, left by a run that was killed`));
  assert.deepEqual(leftovers(secret, run.pid), [], 'the orphaned server and cgroup are gone');
  assert.match(next.stderr(), new RegExp(`removed ${data}/ups-local-${run.pid}-\\w+, left by a run that was killed`));
  assert.deepEqual(fs.readdirSync(data), [], 'its data folder too');
});
