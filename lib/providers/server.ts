// The server under test on the host: the argv that starts it, a free port,
// and a started process with its log in a file. Every server, PicoShare or the
// stand-in, is started the same way: `SERVER -db DATA/store.db` with
// PS_SHARED_SECRET, PORT and TMPDIR in its environment.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { probeRoot } from '../client.ts';
import { SUITE_DIR } from '../paths.ts';
import type { ServerSpec } from './provider.ts';

export const STANDIN_PATH = path.join(SUITE_DIR, 'lib', 'standin', 'standin.mts');
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
export function spawnServer(argv: string[], env: Record<string, string>, logFile: string, cwd?: string): ServerProcess {
  const log = fs.openSync(logFile, 'a');
  const child = spawn(argv[0], argv.slice(1), { env, cwd, stdio: ['ignore', log, log], detached: true });
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

/**
 * A server that never got ready. `answer` is what it did instead, with no
 * timings in it ("GET / answered 500: open templates/...", "GET / connection
 * refused", "the process exited with code 1"), so two starts can be compared.
 */
export class NotReady extends Error {
  constructor(readonly answer: string, message: string) {
    super(message);
  }
}

/** How a server's exit reads, e.g. "the process exited with code 1" or "... was killed by SIGKILL". */
export function describeExit(code: number | null, signal: string | null): string {
  if (signal) return `the process was killed by ${signal}`;
  return `the process exited with code ${code ?? '(unknown)'}`;
}

/** Polls GET / until 200, the process exits, or the timeout passes; a NotReady says what the server did instead. */
export async function waitReady(baseUrl: string, proc: ServerProcess | null, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'GET / never answered';
  while (Date.now() < deadline) {
    if (proc?.exit) throw exitedBeforeReady(describeExit(proc.exit.code, proc.exit.signal));
    const r = await probeRoot(baseUrl);
    if (r.ready) return;
    last = r.answer;
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
  throw notReadyWithin(timeoutMs, last);
}

export function exitedBeforeReady(exit: string): NotReady {
  return new NotReady(exit, `server exited before it was ready: ${exit}`);
}

export function notReadyWithin(timeoutMs: number, answer: string): NotReady {
  return new NotReady(answer, `server not ready within ${Math.round(timeoutMs / 1000)} s: ${answer}`);
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

/** The last `lines` lines of a log file, with the secret masked; see serverOutput() for `withoutReadinessPolls`. */
export function logTail(file: string, lines: number, secret: string, opts: { withoutReadinessPolls?: boolean } = {}): string {
  // Readiness polls can fill a log (one line per 20 ms poll): read further back when they are to be left out.
  const window = opts.withoutReadinessPolls ? 4 * 1024 * 1024 : 64 * 1024;
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, window);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    fs.closeSync(fd);
    text = buf.toString('utf8');
  } catch {
    return '';
  }
  return serverOutput(text, lines, secret, opts);
}

/**
 * The last `lines` lines of the latest server's output, secret masked. With
 * `withoutReadinessPolls`, the access-log lines of GET / are left out (and
 * counted): before the server is ready every GET / is the suite's own poll,
 * and a hundred of them would hide what the server said. Pure.
 */
export function serverOutput(text: string, lines: number, secret: string, opts: { withoutReadinessPolls?: boolean } = {}): string {
  let all = sinceLastStart(text.trimEnd()).split('\n');
  let note = '';
  if (opts.withoutReadinessPolls) {
    const kept = all.filter((l) => !READINESS_POLL_LINE.test(l));
    if (kept.length < all.length) note = `\n(${all.length - kept.length} access-log lines of the suite's GET / readiness polls left out)`;
    all = kept;
  }
  return maskSecret(all.slice(-lines).join('\n') + note, secret);
}

/** An access-log line of GET /: PicoShare's (gorilla's common log format, `"GET / HTTP/1.1" 500 58`) or the stand-in's (`... GET / 200 1.2ms`). */
export const READINESS_POLL_LINE = /"GET \/ HTTP\/[\d.]+" \d{3}|^\S+ GET \/ (\d{3}|-)\b/;

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
