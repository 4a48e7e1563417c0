// Test helper: a temporary git repository holding the fixture server
// (test/fixtures/fixture-server, with the templates/ it reads at run time) in two commits, the second one slower
// (it sleeps SLOW_MS_PER_MIB per MiB while copying an upload into its store).
//   const repo = await makeFixtureRepo('/tmp/x/repo')  // branch main = the slow commit
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { $ } from 'zx';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'fixture-server');
export const SLOW_MS_PER_MIB = 40;
/** The fixture has no cgo and lives at the repository's root. */
export const FIXTURE_BUILD_COMMAND = ['CGO_ENABLED=0', 'go', 'build', '-o', '{out}', '.'];

export interface FixtureRepo {
  dir: string;
  fastCommit: string;
  slowCommit: string;
}

export async function hasGo(): Promise<boolean> {
  return (await $({ nothrow: true, quiet: true })`go version`).exitCode === 0;
}

export async function makeFixtureRepo(dir: string): Promise<FixtureRepo> {
  fs.mkdirSync(dir, { recursive: true });
  // templates/ is read at run time, relative to the server's working directory (see main.go).
  for (const f of ['go.mod', 'main.go', 'templates/root.html']) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(FIXTURE, f), path.join(dir, f));
  }
  const git = $({ cwd: dir, quiet: true });
  const commit = async (msg: string) => {
    await git`git add -A`;
    await git`git -c user.name=fixture -c user.email=fixture@example.com commit -qm ${msg}`;
    return (await git`git rev-parse HEAD`).stdout.trim();
  };
  await git`git init -q -b main`;
  const fastCommit = await commit('fixture server');
  const main = path.join(dir, 'main.go');
  const source = fs.readFileSync(main, 'utf8');
  const slow = source.replace('processingDelayPerMiB = 0 * time.Millisecond', `processingDelayPerMiB = ${SLOW_MS_PER_MIB} * time.Millisecond`);
  if (slow === source) throw new Error('fixture server has no processingDelayPerMiB constant to change');
  fs.writeFileSync(main, slow);
  const slowCommit = await commit(`slower: ${SLOW_MS_PER_MIB} ms per MiB while storing`);
  return { dir, fastCommit, slowCommit };
}

export interface BisectRepo { dir: string; commits: string[] }

/**
 * A fixture repository of `count` commits in a line (index 0 first), each
 * changing a note; from commit `slowAt` on the server sleeps SLOW_MS_PER_MIB
 * per MiB while storing, from `holdAt` on it keeps uploads in memory, and
 * commit `brokenAt` alone does not build.
 */
export async function makeBisectRepo(dir: string, o: { count: number; slowAt?: number; holdAt?: number; brokenAt?: number }): Promise<BisectRepo> {
  const { fastCommit } = await makeFixtureRepo(dir);
  // git directly, not through zx's shell: a loaded machine made 50 shell starts take minutes.
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=fixture', '-c', 'user.email=fixture@example.com', ...args], { cwd: dir, encoding: 'utf8' }).trim();
  git('reset', '-q', '--hard', fastCommit);
  const main = path.join(dir, 'main.go');
  const clean = fs.readFileSync(main, 'utf8');
  const commits = [fastCommit];
  for (let i = 1; i < o.count; i++) {
    let source = clean;
    if (o.slowAt !== undefined && i >= o.slowAt) source = source.replace('processingDelayPerMiB = 0 * time.Millisecond', `processingDelayPerMiB = ${SLOW_MS_PER_MIB} * time.Millisecond`);
    if (o.holdAt !== undefined && i >= o.holdAt) source = source.replace('const holdInMemory = false', 'const holdInMemory = true');
    if (i === o.brokenAt) source += '\nfunc broken() { return 1 }\n';
    fs.writeFileSync(main, source);
    fs.appendFileSync(path.join(dir, 'NOTES'), `commit ${i}\n`);
    git('add', '-A');
    git('commit', '-qm', `commit ${i}`);
    commits.push(git('rev-parse', 'HEAD'));
  }
  return { dir, commits };
}
