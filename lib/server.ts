// The server under test on the host: the argv that starts it, a free port,
// and a started process with its log in a file. Every server, PicoShare or the
// stand-in, is started the same way: `SERVER -db DATA/store.db` with
// PS_SHARED_SECRET, PORT and TMPDIR in its environment.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { isReady } from './client.ts';
import { SUITE_DIR } from './paths.ts';
import type { ServerSpec } from './provider.ts';

export const STANDIN_PATH = path.join(SUITE_DIR, 'lib', 'standin.mts');
const TSX_LOADER = path.join(SUITE_DIR, 'node_modules', 'tsx', 'dist', 'loader.mjs');

/**
 * argv (without the -db part) that runs the server on this host. The stand-in
 * runs from its bundle when the run made one (binaryPath): plain node starts it
 * about 3x faster than tsx, and the server restarts every iteration.
 */
export function hostServerArgv(spec: ServerSpec): string[] {
  if (spec.kind === 'standin') {
    return spec.binaryPath ? [process.execPath, spec.binaryPath] : [process.execPath, '--import', TSX_LOADER, STANDIN_PATH];
  }
  if (!spec.binaryPath) throw new Error('server binary path missing');
  return [spec.binaryPath];
}

/** A port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether something already listens on 127.0.0.1:port (or on all interfaces at that port). */
export async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'EADDRINUSE'));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(false)));
  });
}

export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  /** Set once the process has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  exited: Promise<void>;
}

/**
 * Spawns the server as its own process group with stdout+stderr appended to
 * `logFile`. Spawned directly rather than through zx: zx keeps a process's
 * output in memory, which grows without bound over a long run's request log.
 */
export function spawnServer(argv: string[], env: Record<string, string>, logFile: string): ServerProcess {
  const log = fs.openSync(logFile, 'a');
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', log, log], detached: true });
  fs.closeSync(log);
  const proc: ServerProcess = { child, pid: child.pid ?? -1, exit: null, exited: Promise.resolve() };
  proc.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => { proc.exit = { code, signal }; resolve(); });
    child.once('error', () => { proc.exit ??= { code: null, signal: null }; resolve(); });
  });
  return proc;
}

/** Readiness poll interval: the server restarts every iteration, and half an interval is lost on average each time. */
const READY_POLL_MS = 20;

/** Polls GET / until 200, the process exits, or the timeout passes. */
export async function waitReady(baseUrl: string, proc: ServerProcess | null, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc?.exit) throw new Error(`server exited before it was ready (code ${proc.exit.code}, signal ${proc.exit.signal})`);
    if (await isReady(baseUrl)) return;
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
  throw new Error(`server not ready within ${Math.round(timeoutMs / 1000)} s (GET ${baseUrl} never answered 200)`);
}

/** SIGTERM to the process group, SIGKILL after `graceMs`. */
export async function stopServerProcess(proc: ServerProcess, graceMs = 5000): Promise<void> {
  if (proc.exit) return;
  const signalGroup = (sig: NodeJS.Signals) => { try { process.kill(-proc.pid, sig); } catch { /* gone */ } };
  signalGroup('SIGTERM');
  const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
  signalGroup('SIGKILL'); // anything the server left behind in its group
}

/** The last `lines` lines of a log file, with the secret masked. */
export function logTail(file: string, lines: number, secret: string): string {
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    fs.closeSync(fd);
    text = buf.toString('utf8');
  } catch {
    return '';
  }
  return maskSecret(sinceLastStart(text.split('\n').slice(-lines - 1).join('\n').trimEnd()), secret);
}

/**
 * The part of a server log from its last "--- server start" marker: one log
 * holds every server an environment started, and a failure's tail is about the
 * server that failed, not the one before it. Pure.
 */
export function sinceLastStart(text: string): string {
  const at = text.lastIndexOf('--- server start');
  return at < 0 || (at > 0 && text[at - 1] !== '\n') ? text : text.slice(at);
}

export function maskSecret(text: string, secret: string): string {
  return secret ? text.split(secret).join('***') : text;
}
