// Helpers for tests that run the real ./run-tests and provoke faults in it:
// start it in the background, wait for rows, find what it left behind
// (server processes by their unique secret, memory cgroups by its pid, VMs),
// and write small server wrappers (shell scripts around the stand-in).
//   const run = startRun(['--sizes', '8MiB'], { PS_SHARED_SECRET: secret }, out)
//   await waitFor(() => rowCount(run.runDir()) >= 1); run.child.kill('SIGINT'); await run.exited
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { missingTools, readGuestImage } from '../lib/providers/image.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { cachedStandinBundle } from '../lib/standin/standin-bundle.ts';
import { IMAGE_BUILD_TOOLS } from '../lib/tools.ts';

export interface Run {
  child: ChildProcess;
  pid: number;
  out: string;
  stdout: () => string;
  stderr: () => string;
  /** The results folder once it exists (the only folder inside `out`), else null. */
  runDir: () => string | null;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts ./run-tests with `args` (plus --out when `out` is given) and extra environment; never waits. */
export function startRun(args: string[], env: Record<string, string>, out?: string): Run {
  const dir = out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ups-survive-'));
  const child = spawn(path.join(SUITE_DIR, 'run-tests'), args.includes('--resume') ? args : [...args, '--out', dir], {
    cwd: os.tmpdir(), env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const runDir = () => {
    const dirs = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => /^\d{8}-\d{6}/.test(n)) : [];
    return dirs.length === 1 ? path.join(dir, dirs[0]) : null;
  };
  return { child, pid: child.pid!, out: dir, stdout: () => stdout, stderr: () => stderr, runDir, exited };
}

/**
 * SIGINT to a run `afterMs` into a wait that must not hold a Ctrl-C (a VM boot, a server's readiness, an auth
 * deadline): it must exit 130 within `maxSeconds`, with no row and the interruption as its stop reason.
 */
export async function interruptWait(run: Run, o: { afterMs: number; maxSeconds: number; what: string; diagnostic?: (line: string) => void }): Promise<void> {
  await new Promise((r) => setTimeout(r, o.afterMs));
  run.child.kill('SIGINT');
  const t0 = Date.now();
  const exit = await run.exited;
  const seconds = (Date.now() - t0) / 1000;
  o.diagnostic?.(`exit ${exit.code} ${seconds.toFixed(1)} s after SIGINT`);
  assert.equal(exit.code, 130, run.stderr());
  assert.ok(seconds < o.maxSeconds, `exited ${seconds.toFixed(1)} s after SIGINT during ${o.what}`);
  assert.equal(rowCount(run.runDir()), 0, `an interrupted ${o.what} is not a result: ${rawCsvText(run.runDir())}`);
  assert.equal(readConfig(run.runDir()!).stop_reason, 'interrupted by SIGINT');
}

export async function waitFor(what: string, pred: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function rawCsvText(dir: string | null): string {
  if (!dir) return '';
  try { return fs.readFileSync(path.join(dir, 'raw.csv'), 'utf8'); } catch { return ''; }
}

/** Data rows in raw.csv (header excluded). */
export function rowCount(dir: string | null): number {
  return Math.max(0, rawCsvText(dir).split('\n').filter(Boolean).length - 1);
}

export function readConfig(dir: string): Record<string, any> {
  return JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
}

function pids(): string[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p));
}

/** Processes whose environment or arguments carry `marker` (a run's unique secret reaches every server it starts). */
export function processesWith(marker: string): string[] {
  // Each process is read once: one that exits between two reads of /proc would throw ENOENT.
  return pids().flatMap((p) => {
    if (Number(p) === process.pid) return [];
    try {
      const environ = fs.readFileSync(`/proc/${p}/environ`, 'utf8');
      const cmdline = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      // The suite itself has the secret in its environment too; only its children count.
      const matches = (environ.includes(`PS_SHARED_SECRET=${marker}`) && !cmdline.includes('run-tests.mts')) || cmdline.includes(marker);
      return matches ? [`${p}: ${cmdline.replaceAll('\0', ' ').trim()}`] : [];
    } catch { return []; }
  });
}

/** Why a qemu VM test can't run here (no QEMU, or no image and no means to build one), or null. */
export async function qemuWhyNot(): Promise<string | null> {
  const missing = missingTools(['qemu-system-x86_64', 'ssh']);
  if (missing.length) return `missing ${missing.join(', ')}`;
  if (!(await readGuestImage())) {
    if (process.getuid?.() !== 0) return 'no guest image, and building one needs root';
    const build = missingTools(IMAGE_BUILD_TOOLS);
    if (build.length) return `no guest image, and building one needs ${build.join(', ')}`;
  }
  return null;
}

/** Memory cgroups the run with this pid made (the local provider names them upload-perf-suite-PID-MB). */
export function cgroupsOf(pid: number): string[] {
  const out: string[] = [];
  for (const root of ['/sys/fs/cgroup/memory', '/sys/fs/cgroup']) {
    try { out.push(...fs.readdirSync(root).filter((n) => n.startsWith(`upload-perf-suite-${pid}-`)).map((n) => path.join(root, n))); } catch { /* no such hierarchy */ }
  }
  return out;
}

/**
 * Whether this machine lets this process make a memory cgroup, found by making
 * and removing one by hand, not through lib/providers/cgroup.ts: a test that skips on
 * this answer skips for the machine, never because the code under test broke.
 */
export function machineCanMakeMemoryCgroups(): boolean {
  const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') && fs.readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').split(/\s+/).includes('memory');
  const root = v2 ? '/sys/fs/cgroup' : '/sys/fs/cgroup/memory';
  const probe = path.join(root, `ups-test-probe-${process.pid}`);
  try {
    fs.mkdirSync(probe);
    fs.rmdirSync(probe);
    return true;
  } catch {
    return false;
  }
}

/** Everything a finished run must not leave behind: its servers (by secret) and its cgroups. */
export function leftovers(secret: string, pid: number): string[] {
  return [...processesWith(secret), ...cgroupsOf(pid)];
}

/**
 * Writes an executable server wrapper: `body` is shell run before the stand-in,
 * which it then execs with the suite's arguments (`-db ...`). $STANDIN is the
 * stand-in bundle under this node.
 */
export async function serverWrapper(dir: string, name: string, body: string): Promise<string> {
  const bundle = await cachedStandinBundle();
  const file = path.join(dir, name);
  // Every interface, as PicoShare binds: the local provider runs a server binary in a network namespace of its own.
  fs.writeFileSync(file, `#!/bin/sh\nexport STANDIN_HOST=0.0.0.0\nSTANDIN="${process.execPath} ${bundle}"\n${body}\nexec $STANDIN "$@"\n`, { mode: 0o755 });
  return file;
}

export type AuthFault = '500' | 'exit' | 'hang';

/**
 * Writes a server wrapper whose start number `start` (1-based, counted across the run) is a tiny
 * node server that gets ready (GET / = 200) and then fails POST /api/auth: answers it with 500,
 * exits on it, or never answers it; every other start is the stand-in. Each POST /api/auth it
 * gets is appended to the returned `requests` file, and named in its log (the server log tail).
 */
export async function authFaultServer(dir: string, fault: AuthFault, start: number): Promise<{ binary: string; requests: string }> {
  const requests = path.join(dir, 'auth-requests');
  const script = path.join(dir, 'auth-fault-server.mjs');
  fs.writeFileSync(script, [
    "import fs from 'node:fs';",
    "import http from 'node:http';",
    'http.createServer((req, res) => {',
    "  if (req.method === 'GET' && req.url === '/') return res.end('ready');",
    "  if (req.method !== 'POST' || req.url !== '/api/auth') { res.statusCode = 404; return res.end(); }",
    `  fs.appendFileSync(${JSON.stringify(requests)}, '${fault}\\n');`,
    `  console.error('auth-fault-server: POST /api/auth: ${fault}');`,
    ...{
      '500': ["  res.statusCode = 500; res.end('database is locked\\n');"],
      exit: ['  process.exit(4);'],
      hang: ['  // never answers'],
    }[fault],
    '}).listen(Number(process.env.PORT), process.env.STANDIN_HOST);',
    '',
  ].join('\n'));
  const count = path.join(dir, 'starts');
  const binary = await serverWrapper(dir, `auth-${fault}-server`, [
    `n=$(cat ${count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${count}`,
    `if [ "$n" -eq ${start} ]; then exec ${process.execPath} ${script}; fi`,
  ].join('\n'));
  return { binary, requests };
}

/** True while some iteration's upload spool (data-*\/tmp under the local data parent) holds bytes: an upload is in progress. */
export function uploading(dataParent: string): boolean {
  for (const env of fs.readdirSync(dataParent)) {
    let datas: string[] = [];
    try { datas = fs.readdirSync(path.join(dataParent, env)).filter((n) => n.startsWith('data-')); } catch { continue; }
    for (const d of datas) {
      const tmp = path.join(dataParent, env, d, 'tmp');
      try {
        if (fs.readdirSync(tmp).some((f) => fs.statSync(path.join(tmp, f)).size > 0)) return true;
      } catch { /* removed meanwhile */ }
    }
  }
  return false;
}

/** Mounts a tmpfs of `mib` MiB on a new folder; null when this host does not allow it (not root, no mount). */
export function mountTmpfs(dir: string, mib: number): { dir: string; unmount: () => void } | null {
  fs.mkdirSync(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0755`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return { dir, unmount: () => { spawnSync('umount', [dir]); } };
}

/** A matrix.yaml for a run against `binary`, with small sizes and one memory limit. */
export function matrixFile(dir: string, opts: { binary?: string; sizes: string[]; memory?: number[]; iterations: number; readinessSeconds?: number; uploadSeconds?: number }): string {
  const file = path.join(dir, 'matrix.yaml');
  const lines = [
    `sizes: [${opts.sizes.join(', ')}]`,
    `memory_limits: [${(opts.memory ?? [512]).join(', ')}]`,
    `iterations: ${opts.iterations}`,
    'provider: local',
    `timeouts: { upload_seconds: ${opts.uploadSeconds ?? 120}, readiness_seconds: ${opts.readinessSeconds ?? 30} }`,
    ...(opts.binary ? [`server: { binary: ${JSON.stringify(opts.binary)} }`] : []),
  ];
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}
