// Builds the server under test from git refs of a source checkout, without
// touching the user's working tree: each ref is resolved to a commit, checked
// out into its own detached `git worktree` under the cache folder, built once
// with the configured build command, and the binary cached by commit and
// command. The special ref WORKTREE builds the working tree as it is
// (uncommitted changes included) from a copy of its files. Beside each binary
// the cache keeps the tree it was built from, without .git: the server runs
// with that tree as its working directory (PicoShare before 1.2.2 reads
// ./templates, before 1.3.8 ./static, at request time), and a VM gets a copy.
// Every ref is built even when one fails; then one error names each failed
// ref and its cause (a newer Go needed, a module the proxy no longer serves).
//
//   const built = await buildRefs('/src/picoshare', ['v1.5.3', 'main'], DEFAULT_BUILD)  // from matrix.ts
//   // -> [{ name: 'v1.5.3', commit: '01e0…', dirty: false, binaryPath: '~/.cache/upload-perf-suite/bin/…/server', cached: true, … }]
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { $ } from 'zx';
import { InputError } from './errors.ts';
import { makeDirs } from './dirs.ts';
import { cacheDir } from './paths.ts';
import { requireTool } from './tools.ts';

/** The ref that means "the working tree as it is now, uncommitted changes included". */
export const WORKTREE_REF = 'WORKTREE';

/**
 * A build command as argv; leading NAME=value elements set the build's
 * environment (as in a shell), and every `{out}` is replaced by the binary's
 * path. It runs without a shell, from the root of the checked-out tree.
 */
export type BuildCommand = string[];

export interface BuiltRef {
  /** The ref as the user gave it, e.g. "main", "v1.5.4", "WORKTREE". */
  name: string;
  /** The full commit hash (for WORKTREE: HEAD's commit, the base of the changes). */
  commit: string;
  /** True only for WORKTREE with uncommitted changes (`git status --porcelain` non-empty). */
  dirty: boolean;
  /** `go version` as the build saw it, e.g. "go version go1.26.8 linux/amd64"; null without go. */
  goVersion: string | null;
  binaryPath: string;
  /** The tree the binary was built from, without .git: the server's working directory. */
  treeDir: string;
  /** Seconds the build took when it ran (for a cached binary: the original build's time). */
  buildSeconds: number;
  /** True when the binary came from the cache and nothing was built now. */
  cached: boolean;
}

/** What a build command turns into for one output path: environment and argv, no shell. */
export interface ExpandedCommand {
  env: Record<string, string>;
  argv: string[];
}

/** Splits leading NAME=value elements off as environment and replaces {out}; pure. */
export function expandBuildCommand(command: BuildCommand, out: string): ExpandedCommand {
  const env: Record<string, string> = {};
  let i = 0;
  for (; i < command.length; i++) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(command[i]);
    if (!m) break;
    env[m[1]] = m[2];
  }
  const argv = command.slice(i).map((a) => a.replaceAll('{out}', out));
  if (argv.length === 0) throw new InputError(`build command has no program: ${JSON.stringify(command)}`);
  if (!command.some((a) => a.includes('{out}'))) {
    throw new InputError(`build command must contain {out} (where the binary goes): ${JSON.stringify(command)}`);
  }
  return { env, argv };
}

/** The last `n` lines of a build's output, for an error message. */
export function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

/** A build that ran and failed (not bad input): the other refs' builds go on. */
export class BuildFailed extends Error {}

/**
 * Builds each ref (sequentially: builds are heavy) and returns them in the given
 * order. A failed build does not stop the others: all failures are thrown
 * together afterwards, so one run tells about every ref that cannot be built.
 */
export async function buildRefs(
  source: string, refs: string[], command: BuildCommand,
): Promise<BuiltRef[]> {
  const root = await gitRoot(source);
  const built: BuiltRef[] = [];
  const failed: BuildFailed[] = [];
  for (const ref of refs) {
    try {
      built.push(await buildRef(root, ref, command));
    } catch (e) {
      if (!(e instanceof BuildFailed)) throw e;
      failed.push(e);
    }
  }
  if (failed.length > 0) {
    const summary = failed.length > 1 ? `${failed.length} of ${refs.length} refs failed to build:\n` : '';
    throw new BuildFailed(summary + failed.map((e) => e.message).join('\n\n'));
  }
  return built;
}

/**
 * The cause of a failed Go build in one line, from its output, or null when it
 * is none of the known ones (then the output's last lines say it). Pure.
 */
export function buildFailureCause(output: string): string | null {
  const newer = /go\.mod requires go >= (\S+) \(running go (\S+); GOTOOLCHAIN=\w+\)/.exec(output);
  if (newer) return `needs Go ${newer[1]} or newer (its go.mod's go line); the installed Go is ${newer[2]}`;
  const download = /go: download go(\S+) for \S+: (.+)$/m.exec(output);
  if (download) return `needs Go ${download[1]} or newer (its go.mod's go line), which go could not download: ${download[2].slice(0, 200)}`;
  const mod = /(\S+@v[^\s:]+): (.+)$/m.exec(output);
  if (mod) {
    const gone = /\b(404 Not Found|410 Gone)\b/.exec(mod[2]);
    return gone ? `module ${mod[1]} is not served by the module proxy (${gone[1]})` : `module ${mod[1]} could not be fetched: ${mod[2].slice(0, 200)}`;
  }
  return null;
}

async function gitRoot(source: string): Promise<string> {
  if (!fs.existsSync(source)) throw new InputError(`server source not found: ${source}`);
  const r = await $({ nothrow: true, quiet: true })`git -C ${source} rev-parse --show-toplevel`;
  if (r.exitCode !== 0) throw new InputError(`server source is not a git checkout: ${source} (${r.stderr.trim()})`);
  return r.stdout.trim();
}

async function resolveCommit(root: string, ref: string): Promise<string> {
  const r = await $({ nothrow: true, quiet: true })`git -C ${root} rev-parse --verify --quiet ${`${ref}^{commit}`}`;
  if (r.exitCode !== 0) throw new InputError(`ref "${ref}" is not a commit in ${root}`);
  return r.stdout.trim();
}

async function buildRef(root: string, ref: string, command: BuildCommand): Promise<BuiltRef> {
  const head = await resolveCommit(root, ref === WORKTREE_REF ? 'HEAD' : ref);
  const dirty = ref === WORKTREE_REF
    && (await $({ quiet: true })`git -C ${root} status --porcelain`).stdout.trim() !== '';
  // A clean WORKTREE is exactly HEAD's commit; a dirty one is keyed by its content.
  const files = dirty ? await worktreeFiles(root) : null;
  const tree = files ? `dirty-${contentHash(root, files)}` : head;
  // The host's Go is part of the key: a toolchain upgrade rebuilds.
  const key = `${tree}-${hash(JSON.stringify(command) + '\n' + (await goVersion(os.tmpdir())))}`;
  const binDir = path.join(cacheDir(), 'bin', key);
  const binaryPath = path.join(binDir, 'server');
  const metaPath = path.join(binDir, 'build.json');
  const treeDir = path.join(binDir, 'tree');

  // A binary cached before trees were kept is built again: without its tree it may not run.
  if (fs.existsSync(binaryPath) && fs.existsSync(metaPath) && fs.existsSync(treeDir)) {
    const meta = JSON.parse(fs.readFileSync(metaPath, 'utf8')) as { goVersion: string | null; buildSeconds: number };
    return { name: ref, commit: head, dirty, goVersion: meta.goVersion, binaryPath, treeDir, buildSeconds: meta.buildSeconds, cached: true };
  }

  const workDir = path.join(cacheDir(), 'worktrees', `${key.slice(0, 20)}-${process.pid}-${Date.now()}`);
  makeDirs(path.dirname(workDir), 'the worktrees\' cache folder');
  try {
    if (files) copyFiles(root, files, workDir);
    else await $({ quiet: true })`git -C ${root} worktree add --detach ${workDir} ${head}`;
    const goVer = await goVersion(workDir);
    makeDirs(binDir, 'the binaries\' cache folder');
    // Build to a temporary name and rename, so a concurrent or interrupted build never leaves half a binary.
    const tmpOut = path.join(binDir, `server.tmp-${process.pid}`);
    const started = performance.now();
    await runBuild(command, tmpOut, workDir, ref, head);
    const buildSeconds = (performance.now() - started) / 1000;
    keepTree(workDir, treeDir);
    fs.writeFileSync(metaPath, JSON.stringify({ ref, commit: head, dirty, command, goVersion: goVer, buildSeconds }, null, 2) + '\n');
    fs.renameSync(tmpOut, binaryPath);
    return { name: ref, commit: head, dirty, goVersion: goVer, binaryPath, treeDir, buildSeconds, cached: false };
  } finally {
    if (files) fs.rmSync(workDir, { recursive: true, force: true });
    else await $({ nothrow: true, quiet: true })`git -C ${root} worktree remove --force ${workDir}`;
  }
}

async function runBuild(command: BuildCommand, out: string, cwd: string, ref: string, commit: string): Promise<void> {
  const { env, argv } = expandBuildCommand(command, out);
  // A missing compiler is named with its Debian package, not left to a "command not found" in the build log.
  if (!argv[0].includes('/')) requireTool(argv[0], env.PATH ?? process.env.PATH);
  const r = await $({ cwd, env: { ...process.env, ...env }, nothrow: true, quiet: true })`${argv}`;
  if (r.exitCode !== 0) {
    const cause = buildFailureCause(r.stdall);
    throw new BuildFailed(
      `build of ${ref} (${commit.slice(0, 12)}) failed with exit ${r.exitCode}${cause ? `: ${cause}` : ''}\n`
      + `command: ${command.join(' ')}\nlast lines of its output:\n${lastLines(r.stdall, 20)}`,
    );
  }
  if (!fs.existsSync(out)) throw new BuildFailed(`build of ${ref} succeeded but wrote no binary at {out}: ${command.join(' ')}`);
}

/**
 * Copies the built tree, without .git, beside the binary (through a temporary
 * name, so an interrupted copy is never taken for a tree). The whole tree, not
 * a list of what the server reads: which files a release reads at run time
 * changed from release to release (./templates up to 1.2.1, ./static up to
 * 1.3.7), and a list would have to know each; PicoShare's tree is a few MB.
 */
function keepTree(workDir: string, treeDir: string): void {
  const tmp = `${treeDir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.cpSync(workDir, tmp, { recursive: true, verbatimSymlinks: true, filter: (src) => src !== path.join(workDir, '.git') });
  try {
    fs.renameSync(tmp, treeDir);
  } catch (e) {
    // Another run built the same commit at the same time (shards side by side) and kept its tree first:
    // a tree only ever appears whole (by rename), and it is the same commit's, so it stands.
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(treeDir)) throw e;
  }
}

async function goVersion(cwd: string): Promise<string | null> {
  const r = await $({ cwd, nothrow: true, quiet: true })`go version`;
  return r.exitCode === 0 ? r.stdout.trim() : null;
}

/** Tracked and untracked-but-not-ignored files that exist in the working tree. */
async function worktreeFiles(root: string): Promise<string[]> {
  const r = await $({ quiet: true })`git -C ${root} ls-files -z --cached --others --exclude-standard`;
  const names = [...new Set(r.stdout.split('\0').filter((f) => f !== ''))].sort();
  // Deleted-but-tracked files are listed too; they are not part of the tree as it is.
  return names.filter((f) => fs.existsSync(path.join(root, f)) && !fs.statSync(path.join(root, f)).isDirectory());
}

function copyFiles(root: string, files: string[], dest: string): void {
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(dest, f)), { recursive: true });
    fs.cpSync(path.join(root, f), path.join(dest, f), { verbatimSymlinks: true });
  }
}

function contentHash(root: string, files: string[]): string {
  const h = crypto.createHash('sha256');
  for (const f of files) h.update(f).update('\0').update(fs.readFileSync(path.join(root, f))).update('\0');
  return h.digest('hex').slice(0, 16);
}

function hash(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex').slice(0, 12);
}
