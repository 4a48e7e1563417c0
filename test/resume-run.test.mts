// --resume through the real executable: a run interrupted by SIGINT mid-upload,
// then resumed: every iteration present exactly once, the early rows untouched,
// finished true, the report re-rendered; resuming again changes nothing; a
// resume after the server's commit changed warns and records both commits.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { $ } from 'zx';
import { parseRawCsv } from '../lib/results.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { FIXTURE_BUILD_COMMAND, hasGo, makeFixtureRepo } from './fixture-repo.mts';
import { leftovers, rawCsvText, readConfig, rowCount, startRun, waitFor } from './run-helpers.mts';
import { needs } from './skips.mts';

const runTests = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(path.join(SUITE_DIR, 'run-tests'), args, { cwd: os.tmpdir(), encoding: 'utf8', env: { ...process.env, ...env } });

const keys = (csv: string) => parseRawCsv(csv, 'raw.csv').map((r) => `${r.memory_limit_mb}/${r.file_size}/${r.iteration}`);

test('interrupt, then --resume: all rows present exactly once, earlier rows untouched, finished; a second resume changes nothing', { timeout: 1_200_000 }, async () => {
  const secret = `resume-${Date.now()}`;
  // The throttle is recorded in config.json and must be what the resume runs with, whatever the environment says then.
  const run = startRun(['--sizes', '8MiB,4MiB', '--memory', '512,256', '--iterations', '2'],
    { PS_SHARED_SECRET: secret, STANDIN_THROTTLE_MIBS: '12' });
  await waitFor('three rows', () => rowCount(run.runDir()) >= 3, 120_000);
  run.child.kill('SIGINT');
  assert.equal((await run.exited).code, 130, run.stderr());
  const dir = run.runDir()!;
  const before = rawCsvText(dir);
  const doneBefore = keys(before).length;
  assert.ok(doneBefore >= 3 && doneBefore < 8, `${doneBefore} rows before the resume`);
  assert.equal(readConfig(dir).finished, false);

  const r = runTests(['--resume', dir], { PS_SHARED_SECRET: secret, STANDIN_THROTTLE_MIBS: '' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`resuming: ${doneBefore} iterations already in raw.csv, ${8 - doneBefore} to run`));
  assert.doesNotMatch(r.stderr, /WARNING/, 'same stand-in, same knobs: no warning');
  // A case whose warm-up (iteration 1) was recorded but not its iteration 2 is warmed again, unrecorded.
  const cut = ['512/8MiB', '512/4MiB', '256/8MiB', '256/4MiB'].filter((c) => keys(before).includes(`${c}/1`) && !keys(before).includes(`${c}/2`));
  const rewarmed = [...r.stderr.matchAll(/(\d+)MB (\d+MiB) #2: warm-up again \(not recorded: resumed in a fresh environment\): success/g)].map((x) => `${x[1]}/${x[2]}`);
  assert.deepEqual(rewarmed, cut, r.stderr);
  assert.equal(r.stdout.trim().split('\n').at(-1), dir);
  const after = rawCsvText(dir);
  assert.ok(after.startsWith(before), 'the rows of the first attempt are untouched');
  const all = keys(after);
  assert.deepEqual([...all].sort(), [
    '256/4MiB/1', '256/4MiB/2', '256/8MiB/1', '256/8MiB/2', '512/4MiB/1', '512/4MiB/2', '512/8MiB/1', '512/8MiB/2',
  ], 'every iteration exactly once');
  assert.ok(parseRawCsv(after, 'raw.csv').every((row) => row.exit_reason === 'success'));
  const config = readConfig(dir);
  assert.equal(config.finished, true);
  assert.equal(config.stop_reason, null);
  assert.equal(config.resumes.length, 1);
  assert.deepEqual(config.resumes[0].command, ['--resume', dir]);
  assert.deepEqual(config.server.standin_env, { STANDIN_THROTTLE_MIBS: '12' });
  assert.deepEqual(config.resumes[0].server.standin_env, { STANDIN_THROTTLE_MIBS: '12' }, 'the recorded knobs were reused');
  const report = fs.readFileSync(path.join(dir, 'report.md'), 'utf8');
  assert.doesNotMatch(report, /Run not finished/);
  assert.match(report, /8 iterations, 0 failed/);
  assert.deepEqual(leftovers(secret, r.pid!), []);

  const snapshot = fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f), 'utf8')]);
  const again = runTests(['--resume', dir], { PS_SHARED_SECRET: secret });
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /already finished \(8 rows, ended .*\): nothing to resume, nothing changed/);
  assert.deepEqual(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f), 'utf8')]), snapshot, 'nothing changed');

  const mixed = runTests(['--resume', dir, '--sizes', '1MiB']);
  assert.equal(mixed.status, 2);
  assert.match(mixed.stderr, /--resume takes the run's recorded settings; drop --sizes/);
  fs.rmSync(run.out, { recursive: true, force: true });
});

test('resuming after the server\'s commit changed warns and records both commits', { timeout: 1_200_000 }, async (t) => {
  if (!(await hasGo())) return t.skip(needs('go', 'go is not installed (needed to build the fixture server)'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-resume-git-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const repo = await makeFixtureRepo(path.join(tmp, 'repo'));
  const matrix = path.join(tmp, 'matrix.yaml');
  fs.writeFileSync(matrix, [
    'sizes: [8MiB]', 'memory_limits: [512]', 'iterations: 12', 'provider: local',
    'server:', '  source: repo', `  build: ${JSON.stringify(FIXTURE_BUILD_COMMAND)}`, '',
  ].join('\n'));
  const env = { UPS_CACHE_DIR: path.join(tmp, 'cache'), PS_SHARED_SECRET: `resume-git-${Date.now()}` };
  const run = startRun(['--matrix', matrix], env, path.join(tmp, 'results'));
  await waitFor('two rows', () => rowCount(run.runDir()) >= 2, 180_000);
  run.child.kill('SIGINT');
  assert.equal((await run.exited).code, 130, run.stderr());
  const dir = run.runDir()!;
  const first = readConfig(dir).server.git.commit;
  assert.equal(first, repo.slowCommit);

  fs.appendFileSync(path.join(repo.dir, 'main.go'), '\n// a later commit\n');
  await $({ cwd: repo.dir, quiet: true })`git -c user.name=t -c user.email=t@example.com commit -qam later`;
  const later = (await $({ cwd: repo.dir, quiet: true })`git rev-parse HEAD`).stdout.trim();
  const r = runTests(['--resume', dir], env);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`WARNING: resuming .*the server's commit differs: the run started with ${first.slice(0, 12)}, this resume runs ${later.slice(0, 12)}`));
  const config = readConfig(dir);
  assert.equal(config.server.git.commit, first, 'the run\'s own commit is kept');
  assert.equal(config.resumes[0].server.git.commit, later, 'the resume\'s commit is recorded beside it');
  assert.equal(config.finished, true);
  assert.equal(keys(rawCsvText(dir)).length, 12);
  assert.equal(new Set(keys(rawCsvText(dir))).size, 12);
});
