// lib/refs.ts through the real path: a temporary git repository holding the
// fixture server in two commits (the second slower), git worktrees, go build,
// the binary cache, WORKTREE builds of uncommitted changes, and a failing build.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { $ } from 'zx';
import { buildRefs, expandBuildCommand, lastLines, WORKTREE_REF } from '../lib/refs.ts';
import { InputError } from '../lib/errors.ts';
import { makeFixtureRepo, FIXTURE_BUILD_COMMAND, hasGo } from './fixture-repo.mts';
import { needs } from './skips.mts';

/** A temporary folder, with UPS_CACHE_DIR pointed inside it for the test's duration. */
function tempCache(t: TestContext): string {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'refs-test-'));
  const saved = process.env.UPS_CACHE_DIR;
  process.env.UPS_CACHE_DIR = path.join(tmp, 'cache');
  t.after(() => {
    if (saved === undefined) delete process.env.UPS_CACHE_DIR;
    else process.env.UPS_CACHE_DIR = saved;
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  return tmp;
}

test('expandBuildCommand: leading NAME=value is environment, {out} is replaced per element', { timeout: 1_200_000 }, () => {
  assert.deepEqual(
    expandBuildCommand(['CGO_ENABLED=1', 'GOFLAGS=-trimpath', 'go', 'build', '-o', '{out}', './cmd/picoshare'], '/c/my bin/server'),
    { env: { CGO_ENABLED: '1', GOFLAGS: '-trimpath' }, argv: ['go', 'build', '-o', '/c/my bin/server', './cmd/picoshare'] },
  );
  assert.deepEqual(expandBuildCommand(['make', 'OUT={out}'], '/o').argv, ['make', 'OUT=/o']);
  assert.throws(() => expandBuildCommand(['go', 'build', '.'], '/o'), InputError);
  assert.throws(() => expandBuildCommand(['A=1'], '/o'), InputError);
});

test('lastLines keeps the tail of a build log', { timeout: 1_200_000 }, () => {
  assert.equal(lastLines('a\nb\nc\nd\n', 2), 'c\nd');
  assert.equal(lastLines('only', 20), 'only');
});

test('buildRefs builds two commits in worktrees, caches them, never touches the working tree', { timeout: 1_200_000 }, async (t) => {
  if (!(await hasGo())) return t.skip(needs('go', 'go is not installed (Go 1.22+ is needed to build the fixture server)'));
  const tmp = tempCache(t);
  const repo = await makeFixtureRepo(path.join(tmp, 'repo'));
  const git = $({ cwd: repo.dir, quiet: true });

  const first = await buildRefs(repo.dir, [repo.fastCommit, 'main'], FIXTURE_BUILD_COMMAND);
  assert.deepEqual(first.map((b) => [b.name, b.commit, b.dirty, b.cached]), [
    [repo.fastCommit, repo.fastCommit, false, false],
    ['main', repo.slowCommit, false, false],
  ]);
  for (const b of first) {
    assert.ok(fs.statSync(b.binaryPath).mode & 0o100, `${b.binaryPath} is executable`);
    assert.match(b.goVersion ?? '', /^go version go1\.\d+/);
    assert.ok(b.buildSeconds > 0);
    assert.ok(b.binaryPath.startsWith(path.join(tmp, 'cache')), 'binaries live in the cache folder');
  }
  assert.notEqual(fs.readFileSync(first[0].binaryPath).compare(fs.readFileSync(first[1].binaryPath)), 0);
  // The worktrees are gone again, and the user's tree is as it was.
  assert.equal((await git`git worktree list --porcelain`).stdout.match(/^worktree /gm)?.length, 1);
  assert.equal((await git`git status --porcelain`).stdout, '');
  assert.equal((await git`git rev-parse HEAD`).stdout.trim(), repo.slowCommit);

  const again = await buildRefs(repo.dir, [repo.fastCommit, 'main'], FIXTURE_BUILD_COMMAND);
  assert.deepEqual(again.map((b) => [b.commit, b.cached, b.binaryPath, b.buildSeconds]),
    first.map((b) => [b.commit, true, b.binaryPath, b.buildSeconds]));

  // Another build command is another cache entry.
  const [other] = await buildRefs(repo.dir, ['main'], ['CGO_ENABLED=0', 'go', 'build', '-ldflags=-s', '-o', '{out}', '.']);
  assert.equal(other.cached, false);
  assert.notEqual(other.binaryPath, first[1].binaryPath);
  // The tree each binary was built from is kept beside it, without .git: the server runs in it.
  for (const b of [...first, ...again]) {
    assert.equal(b.treeDir, path.join(path.dirname(b.binaryPath), 'tree'));
    assert.ok(fs.existsSync(path.join(b.treeDir, 'templates', 'root.html')), `${b.treeDir} holds the templates`);
    assert.ok(!fs.existsSync(path.join(b.treeDir, '.git')), 'without .git');
  }
  // That the built server works is refs-run.test.mts's part: it uploads through it.
});

test('WORKTREE builds uncommitted changes as dirty, from a copy, leaving them in place', { timeout: 1_200_000 }, async (t) => {
  if (!(await hasGo())) return t.skip(needs('go', 'go is not installed (Go 1.22+ is needed to build the fixture server)'));
  const tmp = tempCache(t);
  const repo = await makeFixtureRepo(path.join(tmp, 'repo'));
  const git = $({ cwd: repo.dir, quiet: true });

  const [clean] = await buildRefs(repo.dir, [WORKTREE_REF], FIXTURE_BUILD_COMMAND);
  assert.deepEqual([clean.name, clean.commit, clean.dirty, clean.cached], [WORKTREE_REF, repo.slowCommit, false, false]);
  const [head] = await buildRefs(repo.dir, ['HEAD'], FIXTURE_BUILD_COMMAND);
  assert.equal(head.cached, true, 'a clean WORKTREE is HEAD: same cache entry');

  const main = path.join(repo.dir, 'main.go');
  const edited = fs.readFileSync(main, 'utf8').replace('fixture-server</title>', 'fixture-server (edited)</title>');
  fs.writeFileSync(main, edited);
  fs.writeFileSync(path.join(repo.dir, 'notes.txt'), 'untracked\n');
  const statusBefore = (await git`git status --porcelain`).stdout;

  const [dirty] = await buildRefs(repo.dir, [WORKTREE_REF], FIXTURE_BUILD_COMMAND);
  assert.deepEqual([dirty.commit, dirty.dirty, dirty.cached], [repo.slowCommit, true, false]);
  assert.ok(fs.readFileSync(dirty.binaryPath).includes('fixture-server (edited)'), 'the uncommitted edit is in the binary');
  assert.equal((await git`git status --porcelain`).stdout, statusBefore);
  assert.equal(fs.readFileSync(main, 'utf8'), edited);
  const [dirtyAgain] = await buildRefs(repo.dir, [WORKTREE_REF], FIXTURE_BUILD_COMMAND);
  assert.equal(dirtyAgain.cached, true, 'the same uncommitted content is cached');
});

test('a failing build throws with its last lines and cause; other refs still build; an unknown ref is an input error', { timeout: 1_200_000 }, async (t) => {
  if (!(await hasGo())) return t.skip(needs('go', 'go is not installed (Go 1.22+ is needed to build the fixture server)'));
  const tmp = tempCache(t);
  const repo = await makeFixtureRepo(path.join(tmp, 'repo'));
  const git = $({ cwd: repo.dir, quiet: true });
  fs.appendFileSync(path.join(repo.dir, 'main.go'), '\nfunc broken() { return 1 }\n');
  await git`git -c user.name=t -c user.email=t@example.com commit -qam broken`;

  await assert.rejects(buildRefs(repo.dir, ['HEAD'], FIXTURE_BUILD_COMMAND), (e: Error) => {
    assert.match(e.message, /build of HEAD \([0-9a-f]{12}\) failed with exit 1/);
    assert.match(e.message, /main\.go:\d+:\d+: too many return values/);
    return true;
  });
  assert.equal((await git`git worktree list --porcelain`).stdout.match(/^worktree /gm)?.length, 1, 'failed worktree removed');
  assert.deepEqual(fs.readdirSync(path.join(tmp, 'cache', 'bin')).flatMap((d) => fs.readdirSync(path.join(tmp, 'cache', 'bin', d))), [],
    'nothing cached for a failed build');
  await assert.rejects(buildRefs(repo.dir, ['no-such-branch'], FIXTURE_BUILD_COMMAND), InputError);

  // Several refs: the ones that build are built (and cached) even when others fail; one error names each failure.
  fs.writeFileSync(path.join(repo.dir, 'go.mod'), 'module example.com/fixture-server\n\ngo 1.99\n');
  await git`git -c user.name=t -c user.email=t@example.com commit -qam ${'needs go 1.99'}`;
  const local = ['GOTOOLCHAIN=local', ...FIXTURE_BUILD_COMMAND]; // no toolchain download: the installed Go or nothing
  await assert.rejects(buildRefs(repo.dir, ['HEAD', 'HEAD~1', 'HEAD~2'], local), (e: Error) => {
    const lines = e.message.split('\n');
    assert.equal(lines[0], '2 of 3 refs failed to build:');
    assert.match(lines[1], /^build of HEAD \([0-9a-f]{12}\) failed with exit 1: needs Go 1\.99 or newer \(its go\.mod's go line\); the installed Go is 1\.\d+/);
    assert.match(e.message, /^build of HEAD~1 \([0-9a-f]{12}\) failed with exit 1$/m);
    return true;
  });
  const [good] = await buildRefs(repo.dir, ['HEAD~2'], local);
  assert.equal(good.cached, true, 'HEAD~2 was built while the others failed');

  // A go line older than the installed Go builds as usual.
  fs.writeFileSync(path.join(repo.dir, 'go.mod'), 'module example.com/fixture-server\n\ngo 1.17\n');
  fs.writeFileSync(path.join(repo.dir, 'main.go'), fs.readFileSync(path.join(repo.dir, 'main.go'), 'utf8').replace('\nfunc broken() { return 1 }\n', ''));
  await git`git -c user.name=t -c user.email=t@example.com commit -qam ${'go 1.17'}`;
  const [old] = await buildRefs(repo.dir, ['HEAD'], local);
  assert.equal(old.cached, false);
  assert.ok(fs.existsSync(old.binaryPath));
  await assert.rejects(buildRefs(tmp, ['HEAD'], FIXTURE_BUILD_COMMAND), InputError);
});
