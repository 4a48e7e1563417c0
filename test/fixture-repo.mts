// Test helper: a temporary git repository holding the fixture server
// (test/fixtures/fixture-server, with the templates/ it reads at run time) in two commits, the second one slower
// (it sleeps SLOW_MS_PER_MIB per MiB while copying an upload into its store).
//   const repo = await makeFixtureRepo('/tmp/x/repo')  // branch main = the slow commit
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
