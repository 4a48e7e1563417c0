// Servers that read files relative to their working directory, through the
// real executable, and what the run says when a server never gets ready. The
// fixture server (test/fixtures/fixture-server) reads templates/root.html at
// every GET /, as PicoShare before 1.2.2 reads ./templates: a --ref build runs
// in its own tree and succeeds (local; qemu where it is installed); the same
// binary started elsewhere answers 500 and stops the run by the fail-fast rule,
// with the status and body in the row, and failures.log free of the polls.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { parseRawCsv } from '../lib/results.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { FIXTURE_BUILD_COMMAND, hasGo, makeFixtureRepo } from './fixture-repo.mts';
import { qemuWhyNot } from './run-helpers.mts';
import { needs } from './skips.mts';

const NO_GO = 'go is not installed (Go 1.22+ is needed to build the fixture server)';

async function setup(t: TestContext, matrixLines: string[]) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'workdir-run-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const repo = await makeFixtureRepo(path.join(tmp, 'repo'));
  const matrix = path.join(tmp, 'matrix.yaml');
  fs.writeFileSync(matrix, [...matrixLines, ''].join('\n'));
  const env = { ...process.env, UPS_CACHE_DIR: path.join(tmp, 'cache') };
  const run = (...args: string[]) => {
    const started = performance.now();
    const r = spawnSync(path.join(SUITE_DIR, 'run-tests'), ['--matrix', matrix, '--out', path.join(tmp, 'results'), ...args], {
      cwd: tmp, encoding: 'utf8', env,
    });
    return { ...r, seconds: (performance.now() - started) / 1000, dir: r.stdout.trim().split('\n').at(-1) ?? '' };
  };
  const rows = (dir: string) => parseRawCsv(fs.readFileSync(path.join(dir, 'raw.csv'), 'utf8'), 'raw.csv');
  return { tmp, repo, matrix, run, rows };
}

const SOURCE = ['server:', '  source: repo', `  build: ${JSON.stringify(FIXTURE_BUILD_COMMAND)}`];

describe('servers run from their own tree', { timeout: 900_000 }, () => {
  test('local: a --ref build runs in its tree (templates/ read relative to it) and every upload succeeds', async (t) => {
    if (!(await hasGo())) return t.skip(needs('go', NO_GO));
    const { run, rows } = await setup(t, ['sizes: [1MiB]', 'memory_limits: [256]', 'iterations: 2', 'provider: local', ...SOURCE]);
    const r = run('--ref', 'main');
    assert.equal(r.status, 0, r.stderr.slice(-3000));
    assert.deepEqual(rows(r.dir).map((row) => [row.exit_reason, row.error]), [['success', ''], ['success', '']]);
    const config = JSON.parse(fs.readFileSync(path.join(r.dir, 'config.json'), 'utf8'));
    assert.ok(fs.existsSync(path.join(config.server.build.tree, 'templates', 'root.html')), 'the tree is kept beside the binary');
    assert.ok(!fs.existsSync(path.join(config.server.build.tree, '.git')), 'without .git');

    // A cached build brings its tree along.
    const again = run('--ref', 'main', '--iterations', '1');
    assert.equal(again.status, 0, again.stderr.slice(-3000));
    assert.equal(JSON.parse(fs.readFileSync(path.join(again.dir, 'config.json'), 'utf8')).server.build.cached, true);
    assert.deepEqual(rows(again.dir).map((row) => row.exit_reason), ['success']);
  });

  test('qemu: a --ref build runs in a copy of its tree inside the VM', async (t) => {
    if (!(await hasGo())) return t.skip(needs('go', NO_GO));
    const why = await qemuWhyNot();
    if (why) return t.skip(needs('vm', `qemu provider unavailable: ${why}`));
    const { run, rows } = await setup(t, ['sizes: [1MiB]', 'memory_limits: [512]', 'iterations: 2', 'provider: qemu', ...SOURCE]);
    const r = run('--ref', 'main');
    assert.equal(r.status, 0, r.stderr.slice(-3000));
    assert.deepEqual(rows(r.dir).map((row) => [row.exit_reason, row.error]), [['success', ''], ['success', '']]);
  });

  test('a prebuilt binary: server.workdir names the folder it runs in; without it, fail fast on the 500 (exit 1, evidence, rows kept)', async (t) => {
    if (!(await hasGo())) return t.skip(needs('go', NO_GO));
    const { tmp, repo, matrix, run, rows } = await setup(t, []);
    const binary = path.join(tmp, 'fixture-server');
    const built = spawnSync('go', ['build', '-o', binary, '.'], { cwd: repo.dir, encoding: 'utf8', env: { ...process.env, CGO_ENABLED: '0' } });
    assert.equal(built.status, 0, built.stderr);
    const writeMatrix = (server: string[]) => fs.writeFileSync(matrix, [
      'sizes: [1MiB]', 'memory_limits: [256]', 'iterations: 5', 'provider: local', 'timeouts:', '  readiness_seconds: 3',
      'server:', `  binary: ${binary}`, ...server, '',
    ].join('\n'));

    writeMatrix([`  workdir: ${repo.dir}`]);
    const ok = run('--iterations', '2');
    assert.equal(ok.status, 0, ok.stderr.slice(-3000));
    assert.deepEqual(rows(ok.dir).map((row) => row.exit_reason), ['success', 'success']);

    // Run from the test's folder, where there is no templates/: GET / is 500 at every start.
    writeMatrix([]);
    const bad = run();
    console.log(`# fail fast: the run stopped after ${bad.seconds.toFixed(1)} s (2 starts x ${3} s readiness; 5 iterations would take ${5 * 3} s)`);
    assert.equal(bad.status, 1, bad.stderr.slice(-3000));
    assert.match(bad.stderr, /fail fast: the server \(binary\) never got ready on its first 2 starts, each time: GET \/ answered 500: open templates\/root\.html: no such file or directory/);
    assert.match(bad.stderr, /what to check: .*working directory.*server\.workdir/);
    const dir = bad.stdout.trim().split('\n').at(-1)!;
    const got = rows(dir);
    assert.equal(got.length, 2, 'two not_ready rows, kept; the other three iterations never ran');
    for (const row of got) {
      assert.equal(row.exit_reason, 'not_ready');
      assert.equal(row.error, 'server not ready within 3 s: GET / answered 500: open templates/root.html: no such file or directory');
    }
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    assert.equal(config.finished, false);
    assert.match(config.stop_reason, /^fail fast: /);
    const failures = fs.readFileSync(path.join(dir, 'failures.log'), 'utf8');
    assert.match(failures, /listening on :\d+/, "the server's own output is there");
    assert.doesNotMatch(failures, /"GET \/ HTTP\/1\.1" 500/, 'without the access-log lines of the readiness polls');
    assert.match(failures, /\(\d+ access-log lines of the suite's GET \/ readiness polls left out\)/);
    assert.ok(fs.existsSync(path.join(dir, 'report.md')), 'the report of the rows so far is written');
    assert.ok(bad.seconds < 5 * 3, `stopped before the remaining iterations could run: ${bad.seconds.toFixed(1)} s`);
  });
});
