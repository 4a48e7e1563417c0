// Helpers for the stand-in's tests: start it as a real process on a free
// 127.0.0.1 port (through tsx, or any other command such as a bundle under
// plain node), authenticate, upload with a streamed multipart body, and read
// the process's memory.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import assert from 'node:assert/strict';
import { request } from 'undici';

export const SUITE_DIR = join(import.meta.dirname, '..');
export const STANDIN = join(SUITE_DIR, 'lib', 'standin', 'standin.mts');
const TSX = join(SUITE_DIR, 'node_modules', 'tsx', 'dist', 'loader.mjs');
export const SECRET = 'test-secret-ü';
export const NEVER = '2999-12-31T00:00:00Z';
export const MIB = 1024 * 1024;
export const ID_RE = /^[abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789]{10}$/;

export interface Standin {
  base: string;
  port: number;
  child: ChildProcess;
  dataDir: string;
  spoolDir: string;
  output: { stdout: string; stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Signals the process (SIGTERM unless told) and resolves with how it exited. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const tempDirs: string[] = [];

/** A fresh folder under the system's temp dir, removed by removeTempDirs(). */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'standin-test-'));
  tempDirs.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(tempDirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

async function freePort(): Promise<number> {
  const srv = net.createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as net.AddressInfo;
  srv.close();
  await once(srv, 'close');
  return port;
}

/** Runs the stand-in, spawned directly (not via a shell) so its pid is the server's own, for VmHWM and signals. */
export const TSX_COMMAND = [process.execPath, '--import', TSX, STANDIN];

export function spawnStandin(command: string[], env: Record<string, string>, args: string[], dir: string): { child: ChildProcess; output: Standin['output']; exited: Standin['exited'] } {
  const child = spawn(command[0], [...command.slice(1), ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d: Buffer) => (output.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output.stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  return { child, output, exited };
}

/** Starts the stand-in (through tsx unless `command` says otherwise) and waits for GET / = 200. */
export async function startStandin(opts: { env?: Record<string, string>; args?: string[]; command?: string[] } = {}): Promise<Standin> {
  const dir = await tempDir();
  const dataDir = join(dir, 'data');
  const spoolDir = join(dir, 'spool');
  await mkdir(spoolDir);
  const port = await freePort();
  const { child, output, exited } = spawnStandin(
    opts.command ?? TSX_COMMAND,
    { PS_SHARED_SECRET: SECRET, PORT: String(port), TMPDIR: spoolDir, ...opts.env },
    ['-db', join(dataDir, 'store.db'), ...(opts.args ?? [])],
    dir,
  );
  let exit: { code: number | null } | null = null;
  void exited.then((e) => (exit = e));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exit) throw new Error(`stand-in exited before it was ready: ${output.stderr}`);
    if (Date.now() > deadline) throw new Error('stand-in not ready within 10 s');
    try {
      const res = await request(base + '/');
      await res.body.dump();
      if (res.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!exit) child.kill(signal);
    return exited;
  };
  return { base, port, child, dataDir, spoolDir, output, exited, stop };
}

export async function auth(base: string, secret = SECRET): Promise<string> {
  const res = await request(`${base}/api/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sharedSecretKey: secret }),
  });
  await res.body.dump();
  assert.equal(res.statusCode, 200);
  const cookie = String(res.headers['set-cookie']);
  return cookie.split(';')[0];
}

export interface UploadSpec {
  cookie?: string;
  /** The file's bytes; or `size` bytes of one repeated 1 MiB random block. */
  data?: Buffer;
  size?: number;
  filename?: string;
  contentType?: string;
  note?: string;
  query?: string;
}

export interface UploadResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  bodyBytes: number;
  /** ms from request start to the last body byte handed to the socket, and to the response headers. */
  lastByteMs: number;
  responseMs: number;
}

const BLOCK = randomBytes(MIB);

/** POST /api/entry with a hand-built multipart body streamed in 1 MiB pieces (never all in memory). */
export async function upload(base: string, spec: UploadSpec): Promise<UploadResult> {
  const boundary = `----standin-test-${randomBytes(8).toString('hex')}`;
  const note = spec.note === undefined ? '' : `--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n${spec.note}\r\n`;
  const head = Buffer.from(
    `${note}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${spec.filename ?? 'test.bin'}"\r\n` +
      `Content-Type: ${spec.contentType ?? 'application/octet-stream'}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const size = spec.data?.length ?? spec.size ?? 0;
  const started = performance.now();
  let lastByteMs = NaN;
  async function* body(): AsyncGenerator<Buffer> {
    yield head;
    for (let off = 0; off < size; off += MIB) {
      const n = Math.min(MIB, size - off);
      yield spec.data ? spec.data.subarray(off, off + n) : BLOCK.subarray(0, n);
    }
    yield tail;
    lastByteMs = performance.now() - started; // runs once the tail has been taken for writing
  }
  const bodyBytes = head.length + size + tail.length;
  const res = await request(`${base}/api/entry${spec.query ?? `?expiration=${NEVER}`}`, {
    method: 'POST',
    headers: {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(bodyBytes),
      ...(spec.cookie ? { cookie: spec.cookie } : {}),
    },
    body: Readable.from(body(), { objectMode: false, highWaterMark: 1 }),
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  const responseMs = performance.now() - started;
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, bodyBytes, lastByteMs, responseMs };
}

/** Sends a raw request head (and nothing else) and returns what the server answers. */
export async function rawRequest(port: number, head: string): Promise<string> {
  const sock = net.connect(port, '127.0.0.1');
  await once(sock, 'connect');
  sock.write(head);
  let text = '';
  sock.on('data', (d: Buffer) => (text += d.toString()));
  const deadline = Date.now() + 3000;
  while (!/\r\n\r\n/.test(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  sock.destroy();
  return text;
}

export async function vmHwmBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  assert.ok(kb, 'VmHWM in /proc/PID/status');
  return Number(kb[1]) * 1024;
}

/** Spool files in the stand-in's TMPDIR (tsx keeps its own cache there too). */
export async function spoolFiles(s: Standin): Promise<string[]> {
  return (await readdir(s.spoolDir)).filter((f) => f.startsWith('standin-multipart-'));
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

