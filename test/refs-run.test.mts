// `run-tests --ref A --ref B` through the real executable: a temporary git
// repository with the fixture server in two commits (the second sleeps while
// storing), each built in a git worktree with go build, both measured in one
// interleaved run, and the comparison calling the second slower with exit 1.
// A ref whose build fails stops the run before any case, with the build's last lines.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseRawCsv } from '../lib/results.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { sideFolderNames } from '../lib/run.ts';
import { $ } from 'zx';
import { FIXTURE_BUILD_COMMAND, hasGo, makeFixtureRepo, SLOW_MS_PER_MIB } from './fixture-repo.mts';
import { needs } from './skips.mts';

/** A temporary folder holding the fixture repository, a matrix pointing at it, the cache and the results. */
async function setup(t: TestContext) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'refs-run-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const repo = await makeFixtureRepo(path.join(tmp, 'repo'));
  const matrix = path.join(tmp, 'matrix.yaml');
  fs.writeFileSync(matrix, [
    'sizes: [8MiB]', 'memory_limits: [512]', 'iterations: 7', 'provider: local',
    'server:', '  source: repo', `  build: ${JSON.stringify(FIXTURE_BUILD_COMMAND)}`, '',
  ].join('\n'));
  const run = (...args: string[]) => spawnSync(path.join(SUITE_DIR, 'run-tests'), ['--matrix', matrix, '--out', path.join(tmp, 'results'), ...args], {
    cwd: tmp, encoding: 'utf8', env: { ...process.env, UPS_CACHE_DIR: path.join(tmp, 'cache') },
  });
  return { tmp, repo, run };
}

test('sideFolderNames: refs as safe folder names, told apart when they collide', { timeout: 1_200_000 }, () => {
  assert.deepEqual(sideFolderNames(['v1.5.3', 'feature/x']), ['v1.5.3', 'feature_x']);
  assert.deepEqual(sideFolderNames(['HEAD~1', 'HEAD^1']), ['HEAD_1-1', 'HEAD_1-2']);
  assert.deepEqual(sideFolderNames(['..', 'main']), ['_', 'main']);
});

test('run-tests --ref fast --ref slow: interleaved, one folder per ref, comparison says slower, exit 1', { timeout: 1_200_000 }, async (t) => {
  if (!(await hasGo())) return t.skip(needs('go', 'go is not installed (Go 1.22+ is needed to build the fixture server)'));
  const { repo, run } = await setup(t);
  const r = run('--ref', repo.fastCommit, '--ref', 'main', '--iterations', '7', '--seed', '7');
  assert.equal(r.status, 1, `exit 1 expected (second ref slower)\n${r.stderr.slice(-3000)}`);
  const lines = r.stdout.trim().split('\n');
  const parent = lines.at(-1)!;
  const names = sideFolderNames([repo.fastCommit, 'main']);
  assert.deepEqual(fs.readdirSync(parent).sort(), [...names, 'compare', 'history.md', 'history.svg'].sort());
  assert.match(r.stdout, /slower/i);
  assert.match(fs.readFileSync(path.join(parent, 'compare', 'compare.md'), 'utf8'), /slower/i);

  const sides = names.map((n) => {
    const dir = path.join(parent, n);
    for (const f of ['config.json', 'failures.log', 'raw.csv', 'report.md']) assert.ok(fs.existsSync(path.join(dir, f)), `${n}/${f}`);
    return {
      config: JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')),
      rows: parseRawCsv(fs.readFileSync(path.join(dir, 'raw.csv'), 'utf8'), 'raw.csv'),
    };
  });
  assert.deepEqual(sides.map((s) => s.config.server.git), [
    { commit: repo.fastCommit, branch: repo.fastCommit, dirty: false },
    { commit: repo.slowCommit, branch: 'main', dirty: false },
  ]);
  for (const s of sides) {
    assert.equal(s.config.finished, true);
    assert.equal(s.config.server.kind, 'source');
    assert.equal(s.config.server.build.cached, false);
    assert.match(s.config.server.build.go_version, /^go version go1\./);
    assert.deepEqual(s.config.ab, { ...s.config.ab, refs: [repo.fastCommit, 'main'], seed: 7, parent });
    assert.equal(s.rows.length, 7);
    for (const row of s.rows) assert.equal(row.exit_reason, 'success', row.error);
  }
  // Interleaved: in time order, each iteration's pair holds one run of each ref.
  const timeline = sides.flatMap((s, side) => s.rows.map((row) => ({ side, at: row.started_at, iteration: row.iteration })))
    .sort((a, b) => a.at.localeCompare(b.at));
  for (let i = 0; i < timeline.length; i += 2) {
    assert.deepEqual([timeline[i].side, timeline[i + 1].side].sort(), [0, 1], `pair ${i / 2}`);
    assert.equal(timeline[i].iteration, timeline[i + 1].iteration);
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const processing = sides.map((s) => median(s.rows.slice(1).map((row) => row.processing_seconds!)));
  assert.ok(processing[1] - processing[0] > 0.2, `slow commit processes 8 MiB at least 0.2 s longer: ${processing.join(' vs ')}`);

  // A second run reuses both builds.
  // Two iterations are one measured pair: the exact test's p is 1 at best, so the slowdown cannot be called: exit 0.
  const again = run('--ref', repo.fastCommit, '--ref', 'main', '--iterations', '2', '--seed', '8');
  assert.equal(again.status, 0, again.stderr.slice(-2000));
  const againParent = again.stdout.trim().split('\n').at(-1)!;
  assert.equal(JSON.parse(fs.readFileSync(path.join(againParent, 'compare', 'compare.json'), 'utf8')).cases[0].verdict, 'inconclusive');
  for (const n of names) {
    assert.equal(JSON.parse(fs.readFileSync(path.join(againParent, n, 'config.json'), 'utf8')).server.build.cached, true);
  }
});

test('run-tests --ref of a commit that does not build: exit 1 before any case, with the build\'s last lines', { timeout: 1_200_000 }, async (t) => {
  if (!(await hasGo())) return t.skip(needs('go', 'go is not installed (Go 1.22+ is needed to build the fixture server)'));
  const { tmp, repo, run } = await setup(t);
  fs.appendFileSync(path.join(repo.dir, 'main.go'), '\nfunc broken() { return 1 }\n');
  spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qam', 'broken'], { cwd: repo.dir });
  const r = run('--ref', 'main~1', '--ref', 'main');
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /Error: build of main \([0-9a-f]{12}\) failed/);
  assert.match(r.stderr, /too many return values/);
  assert.ok(!fs.existsSync(path.join(tmp, 'results')), 'no results folder: the run stopped before any case');
  const bad = run('--ref', 'no-such-ref');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /ref "no-such-ref" is not a commit/);
});

test('server.source without --ref: one plain run of the working tree as it is, recorded as dirty', { timeout: 1_200_000 }, async (t) => {
  if (!(await hasGo())) return t.skip(needs('go', 'go is not installed (Go 1.22+ is needed to build the fixture server)'));
  const { repo, run } = await setup(t);
  fs.writeFileSync(path.join(repo.dir, 'notes.txt'), 'uncommitted\n');
  const r = run('--iterations', '1', '--sizes', '1MiB');
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const dir = r.stdout.trim().split('\n').at(-1)!;
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.deepEqual(config.server.git, { commit: repo.slowCommit, branch: 'WORKTREE', dirty: true });
  assert.equal(config.ab, undefined, 'one ref is a plain run');
  const rows = parseRawCsv(fs.readFileSync(path.join(dir, 'raw.csv'), 'utf8'), 'raw.csv');
  assert.deepEqual(rows.map((row) => row.exit_reason), ['success']);
  assert.equal(fs.readFileSync(path.join(repo.dir, 'notes.txt'), 'utf8'), 'uncommitted\n', 'the working tree is left as it was');
});

test('three refs: every round runs all three in a seeded order, a folder each, each later ref compared with the first, the history table', { timeout: 1_200_000 }, async (t) => {
  if (!(await hasGo())) return t.skip(needs('go', 'go is not installed (Go 1.22+ is needed to build the fixture server)'));
  const { repo, run } = await setup(t);
  // A third commit, fast again: main~1 is the slow one.
  const main = path.join(repo.dir, 'main.go');
  fs.writeFileSync(main, fs.readFileSync(main, 'utf8').replace(`processingDelayPerMiB = ${SLOW_MS_PER_MIB} * time.Millisecond`, 'processingDelayPerMiB = 0 * time.Millisecond'));
  const git = $({ cwd: repo.dir, quiet: true });
  await git`git -c user.name=fixture -c user.email=fixture@example.com commit -qam ${'fast again'}`;
  const r = run('--ref', repo.fastCommit, '--ref', 'main~1', '--ref', 'main', '--iterations', '7', '--seed', '3');
  assert.equal(r.status, 1, `exit 1: main~1 is slower than the first ref\n${r.stderr.slice(-3000)}`);
  const parent = r.stdout.trim().split('\n').at(-1)!;
  const names = sideFolderNames([repo.fastCommit, 'main~1', 'main']);
  assert.deepEqual(fs.readdirSync(parent).sort(), [...names, `compare-${names[1]}`, `compare-${names[2]}`, 'history.md', 'history.svg'].sort());
  const rows = names.map((n) => parseRawCsv(fs.readFileSync(path.join(parent, n, 'raw.csv'), 'utf8'), 'raw.csv'));
  // Every round holds one run of each ref, back to back; which goes first comes from the seed, and varies.
  const timeline = rows.flatMap((rs, side) => rs.map((row) => ({ side, at: row.started_at, iteration: row.iteration }))).sort((a, b) => a.at.localeCompare(b.at));
  const orders = new Set<string>();
  for (let i = 0; i < timeline.length; i += 3) {
    const round = timeline.slice(i, i + 3);
    assert.deepEqual(round.map((x) => x.side).sort(), [0, 1, 2], `round ${i / 3 + 1}`);
    assert.ok(round.every((x) => x.iteration === round[0].iteration));
    orders.add(round.map((x) => x.side).join(''));
  }
  assert.ok(orders.size > 1, 'the refs do not always run in the same order');
  const verdict = (n: string) => JSON.parse(fs.readFileSync(path.join(parent, `compare-${n}`, 'compare.json'), 'utf8')).cases[0].verdict;
  assert.equal(verdict(names[1]), 'slower');
  assert.notEqual(verdict(names[2]), 'slower');
  const history = fs.readFileSync(path.join(parent, 'history.md'), 'utf8');
  const table = history.split('\n').filter((l) => /^\| (?!ref|---)/.test(l)).map((l) => l.split('|')[1].trim());
  assert.deepEqual(table, [repo.fastCommit, 'main~1', 'main'], 'one row per ref, in the order given');
  assert.match(history, /!\[Throughput, processing time and server peak RSS across the refs\]\(history\.svg\)/);
});
