// Interruption for real: SIGINT and SIGTERM sent to a running ./run-tests while
// an upload is in progress (a throttled stand-in, its spool file growing), and a
// second SIGINT while it waits for a server that shrugs off SIGTERM. Checks the
// exit code, config.json, report.md, that the rows written before the signal are
// intact, and that no server process, cgroup or data folder is left; a SIGINT
// while a server keeps the authentication request unanswered; and a
// SIGINT during a ref build, which must leave no git worktree behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  authFaultServer, interruptWait, leftovers, matrixFile, processesWith, rawCsvText, readConfig, rowCount, serverWrapper, startRun, uploading, waitFor, type Run,
} from './run-helpers.mts';
import { FIXTURE_BUILD_COMMAND, hasGo, makeFixtureRepo } from './fixture-repo.mts';
import { needs } from './skips.mts';

/** A scratch folder with an empty `data` folder in it, for UPS_LOCAL_DATA_DIR. */
function scratchWithData(prefix: string): { tmp: string; dataParent: string } {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const dataParent = path.join(tmp, 'data');
  fs.mkdirSync(dataParent);
  return { tmp, dataParent };
}

/** Nothing of the run is left (server process, cgroup, data folder); then its folders are removed. */
function assertNothingLeft(secret: string, run: Run, dataParent: string, tmp: string): void {
  assert.deepEqual(leftovers(secret, run.pid), [], 'no server process or cgroup left');
  assert.deepEqual(fs.readdirSync(dataParent), [], 'no data folder left');
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(run.out, { recursive: true, force: true });
}

async function interruptMidUpload(run: Run, dataParent: string, sig: NodeJS.Signals) {
  await waitFor('the first row', () => rowCount(run.runDir()) >= 1, 120_000);
  const before = rawCsvText(run.runDir());
  await waitFor('the next upload to be in progress', () => uploading(dataParent), 60_000);
  run.child.kill(sig);
  const exit = await run.exited;
  return { before, exit };
}

for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${sig} mid-upload: exit ${code}, finished false with the reason, report from the rows so far, nothing left`, { timeout: 1_200_000 }, async () => {
    const secret = `intr-${sig}-${Date.now()}`;
    const dataParent = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-intr-data-'));
    const run = startRun(['--sizes', '8MiB', '--memory', '256', '--iterations', '4'],
      { PS_SHARED_SECRET: secret, STANDIN_THROTTLE_MIBS: '6', UPS_LOCAL_DATA_DIR: dataParent });
    const { before, exit } = await interruptMidUpload(run, dataParent, sig);
    const dir = run.runDir()!;
    assert.equal(exit.code, code, run.stderr());
    assert.match(run.stderr(), new RegExp(`${sig}: stopping the current upload and tearing down`));
    assert.equal(run.stdout().trim().split('\n').at(-1), dir, 'the results folder is still the last stdout line');

    const config = readConfig(dir);
    assert.equal(config.finished, false);
    assert.equal(config.stop_reason, `interrupted by ${sig}`);
    assert.ok(config.ended_at, 'ended_at written');
    const after = rawCsvText(dir);
    assert.ok(after.startsWith(before), 'the rows written before the signal are intact');
    assert.equal(rowCount(dir), before.split('\n').filter(Boolean).length - 1, 'the interrupted upload left no half row');
    const report = fs.readFileSync(path.join(dir, 'report.md'), 'utf8');
    assert.match(report, new RegExp(`Run not finished\\*\\*: interrupted by ${sig}`));
    assert.match(report, /\| 256MB \| 8MiB \|/);

    assertNothingLeft(secret, run, dataParent, dataParent);
  });
}

test('SIGINT while the server is getting ready: exit 130 at once, not after the readiness timeout, and no not_ready row', { timeout: 1_200_000 }, async () => {
  const secret = `intr-ready-${Date.now()}`;
  const { tmp, dataParent } = scratchWithData('ups-intr-ready-');
  const deaf = path.join(tmp, 'deaf-server');
  fs.writeFileSync(deaf, '#!/bin/sh\nexec sleep 300\n', { mode: 0o755 }); // never answers GET /
  const matrix = matrixFile(tmp, { binary: deaf, sizes: ['1MiB'], memory: [256], iterations: 2, readinessSeconds: 60 });
  const run = startRun(['--matrix', matrix], { PS_SHARED_SECRET: secret, UPS_LOCAL_DATA_DIR: dataParent });
  await waitFor('the server to be started', () => processesWith(secret).some((x) => x.includes('sleep 300')), 120_000);
  await interruptWait(run, { afterMs: 1000, maxSeconds: 15, what: 'the readiness wait (60 s)' });
  assertNothingLeft(secret, run, dataParent, tmp);
});

test('SIGINT while the server keeps POST /api/auth unanswered: exit 130 at once, not after the auth deadline, and no timeout row', { timeout: 1_200_000 }, async () => {
  const secret = `intr-auth-${Date.now()}`;
  const { tmp, dataParent } = scratchWithData('ups-intr-auth-');
  const { binary, requests } = await authFaultServer(tmp, 'hang', 1);
  // The auth deadline is the readiness timeout: 60 s.
  const matrix = matrixFile(tmp, { binary, sizes: ['1MiB'], memory: [256], iterations: 2, readinessSeconds: 60 });
  const run = startRun(['--matrix', matrix], { PS_SHARED_SECRET: secret, UPS_LOCAL_DATA_DIR: dataParent });
  await waitFor('the auth request to reach the server', () => fs.existsSync(requests), 120_000);
  await interruptWait(run, { afterMs: 500, maxSeconds: 15, what: 'the auth wait (its deadline is 60 s)' });
  assertNothingLeft(secret, run, dataParent, tmp);
});

test('a second SIGINT during cleanup says what it is waiting for, and the cleanup still finishes', { timeout: 1_200_000 }, async () => {
  const secret = `intr-twice-${Date.now()}`;
  const { tmp, dataParent } = scratchWithData('ups-intr2-');
  // Ignores SIGTERM and outlives the stand-in it starts: the suite has to wait out its grace period and SIGKILL it.
  const stubborn = await serverWrapper(tmp, 'stubborn-server', [
    "trap '' TERM",
    'export STANDIN_THROTTLE_MIBS=6',
    '$STANDIN "$@" &',
    'wait',
    'sleep 60',
    'exit 0',
  ].join('\n'));
  const matrix = matrixFile(tmp, { binary: stubborn, sizes: ['8MiB'], memory: [256], iterations: 4 });
  const run = startRun(['--matrix', matrix], { PS_SHARED_SECRET: secret, UPS_LOCAL_DATA_DIR: dataParent });
  await waitFor('the first row', () => rowCount(run.runDir()) >= 1, 120_000);
  await waitFor('the next upload to be in progress', () => uploading(dataParent), 60_000);
  run.child.kill('SIGINT');
  await waitFor('the first SIGINT to be taken', () => /SIGINT: stopping/.test(run.stderr()), 10_000);
  await new Promise((r) => setTimeout(r, 500));
  run.child.kill('SIGINT');
  const t0 = Date.now();
  const exit = await run.exited;
  assert.equal(exit.code, 130, run.stderr());
  assert.match(run.stderr(), /SIGINT again: still cleaning up[^\n]*waiting for local 256 MB \(server pid \d+, cgroup /);
  assert.ok(Date.now() - t0 > 1000, 'the second SIGINT did not cut the cleanup short');
  assert.equal(readConfig(run.runDir()!).stop_reason, 'interrupted by SIGINT');
  assert.deepEqual(leftovers(secret, run.pid), [], 'the stubborn server was killed');
  const left = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(stubborn); } catch { return false; }
  });
  assert.deepEqual(left, [], 'no stubborn wrapper left');
  assert.deepEqual(fs.readdirSync(dataParent), [], 'no data folder left');
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(run.out, { recursive: true, force: true });
});

test('SIGINT while a ref is being built: the build cleans up its worktree, exit 130 before any results folder', { timeout: 1_200_000 }, async (t) => {
  if (!(await hasGo())) return t.skip(needs('go', 'go is not installed (needed to build the fixture server)'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-intr-build-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const repo = await makeFixtureRepo(path.join(tmp, 'repo'));
  const matrix = path.join(tmp, 'matrix.yaml');
  fs.writeFileSync(matrix, ['sizes: [1MiB]', 'memory_limits: [512]', 'iterations: 1', 'server:', '  source: repo',
    `  build: ${JSON.stringify(FIXTURE_BUILD_COMMAND)}`, ''].join('\n'));
  const cache = path.join(tmp, 'cache');
  const run = startRun(['--matrix', matrix, '--ref', 'main'], { UPS_CACHE_DIR: cache }, path.join(tmp, 'results'));
  await waitFor('the build to start', () => /building main/.test(run.stderr()), 60_000);
  run.child.kill('SIGINT');
  const exit = await run.exited;
  assert.equal(exit.code, 130, run.stderr());
  assert.match(run.stderr(), /SIGINT: stopping once the step under way has cleaned up/);
  assert.equal(run.runDir(), null, 'no results folder');
  const worktrees = spawnSync('git', ['-C', repo.dir, 'worktree', 'list', '--porcelain'], { encoding: 'utf8' }).stdout;
  assert.equal(worktrees.match(/^worktree /gm)?.length, 1, `only the repository's own worktree:\n${worktrees}`);
  assert.deepEqual(fs.existsSync(path.join(cache, 'worktrees')) ? fs.readdirSync(path.join(cache, 'worktrees')) : [], []);
});

test('SIGINT just after the results folder is made: it still gets config.json and report.md, and stdout names it', { timeout: 1_200_000 }, async () => {
  const secret = `intr-early-${Date.now()}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-intr-early-'));
  // A slow git: the run reads the suite's commit for config.json right after making the folder.
  const bin = path.join(tmp, 'bin');
  fs.mkdirSync(bin);
  const realGit = spawnSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).stdout.trim();
  fs.writeFileSync(path.join(bin, 'git'), `#!/bin/sh\nsleep 3\nexec ${realGit} "$@"\n`, { mode: 0o755 });
  const run = startRun(['--quick'], { PS_SHARED_SECRET: secret, PATH: `${bin}:${process.env.PATH}` });
  await waitFor('the results folder', () => run.runDir() !== null, 60_000);
  run.child.kill('SIGINT');
  const exit = await run.exited;
  const dir = run.runDir()!;
  assert.equal(exit.code, 130, run.stderr());
  assert.equal(run.stdout().trim().split('\n').at(-1), dir, 'the results folder is the last stdout line');
  const config = readConfig(dir);
  assert.equal(config.finished, false);
  assert.equal(config.stop_reason, 'interrupted by SIGINT');
  assert.equal(rowCount(dir), 0);
  assert.match(fs.readFileSync(path.join(dir, 'report.md'), 'utf8'), /Run not finished\*\*: interrupted by SIGINT/);
  assert.deepEqual(leftovers(secret, run.pid), [], 'no server process or cgroup left');
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(run.out, { recursive: true, force: true });
});
