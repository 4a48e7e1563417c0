// The stand-in server (lib/standin.mts) as a real process on 127.0.0.1: the
// PicoShare contract it speaks, its spool-then-store upload path, and each
// fault knob observed for real.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';

const SUITE_DIR = join(import.meta.dirname, '..');
const STANDIN = join(SUITE_DIR, 'lib', 'standin.mts');
const TSX = join(SUITE_DIR, 'node_modules', 'tsx', 'dist', 'loader.mjs');
const SECRET = 'test-secret-ü';
const NEVER = '2999-12-31T00:00:00Z';
const MIB = 1024 * 1024;
const ID_RE = /^[abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789]{10}$/;

interface Standin {
  base: string;
  port: number;
  child: ChildProcess;
  dataDir: string;
  spoolDir: string;
  output: { stdout: string; stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const tempDirs: string[] = [];
after(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function freePort(): Promise<number> {
  const srv = net.createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as net.AddressInfo;
  srv.close();
  await once(srv, 'close');
  return port;
}

/** Runs the stand-in, spawned directly (not via a shell) so its pid is the server's own, for VmHWM and signals. */
function spawnStandin(env: Record<string, string>, args: string[], dir: string): { child: ChildProcess; output: Standin['output']; exited: Standin['exited'] } {
  const child = spawn(process.execPath, ['--import', TSX, STANDIN, ...args], {
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

async function startStandin(env: Record<string, string> = {}, args: string[] = []): Promise<Standin> {
  const dir = await mkdtemp(join(tmpdir(), 'standin-test-'));
  tempDirs.push(dir);
  const dataDir = join(dir, 'data');
  const spoolDir = join(dir, 'spool');
  await mkdir(spoolDir);
  const port = await freePort();
  const { child, output, exited } = spawnStandin(
    { PS_SHARED_SECRET: SECRET, PORT: String(port), TMPDIR: spoolDir, ...env },
    ['-db', join(dataDir, 'store.db'), ...args],
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
  const stop = async () => {
    if (!exit) child.kill('SIGTERM');
    return exited;
  };
  return { base, port, child, dataDir, spoolDir, output, exited, stop };
}

async function auth(base: string, secret = SECRET): Promise<string> {
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

interface UploadSpec {
  cookie?: string;
  /** The file's bytes; or `size` bytes of one repeated 1 MiB random block. */
  data?: Buffer;
  size?: number;
  filename?: string;
  contentType?: string;
  note?: string;
  query?: string;
}

interface UploadResult {
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
async function upload(base: string, spec: UploadSpec): Promise<UploadResult> {
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
async function rawRequest(port: number, head: string): Promise<string> {
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

async function vmHwmBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  assert.ok(kb, 'VmHWM in /proc/PID/status');
  return Number(kb[1]) * 1024;
}

/** Spool files in the stand-in's TMPDIR (tsx keeps its own cache there too). */
async function spoolFiles(s: Standin): Promise<string[]> {
  return (await readdir(s.spoolDir)).filter((f) => f.startsWith('standin-multipart-'));
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('stand-in: the PicoShare contract', () => {
  let s: Standin;
  let cookie: string;
  before(async () => {
    s = await startStandin();
    cookie = await auth(s.base);
  });
  after(async () => {
    await s?.stop();
  });

  test('GET / answers 200 with HTML (the readiness probe)', async () => {
    const res = await request(s.base + '/');
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(await res.body.text(), /stand-in/);
  });

  test('POST /api/auth: 200 with an HttpOnly SameSite=Strict cookie, 401 wrong secret, 400 malformed', async () => {
    const post = async (body: string) => {
      const res = await request(`${s.base}/api/auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.body.dump();
      return res;
    };
    const ok = await post(JSON.stringify({ sharedSecretKey: SECRET }));
    assert.equal(ok.statusCode, 200);
    const setCookie = String(ok.headers['set-cookie']);
    assert.match(setCookie, /^sharedSecret=[^;]+;/);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.ok(!setCookie.includes(SECRET), 'the cookie does not carry the secret in clear');
    assert.equal((await post(JSON.stringify({ sharedSecretKey: 'wrong' }))).statusCode, 401);
    assert.equal((await post('')).statusCode, 400);
    assert.equal((await post('{not json')).statusCode, 400);
    assert.equal((await post(JSON.stringify({ sharedSecretKey: '' }))).statusCode, 400);
    assert.equal((await post(JSON.stringify({ other: 1 }))).statusCode, 400);
  });

  test('/api routes need the cookie: 401 "Authentication required"', async () => {
    const up = await upload(s.base, { size: 1000 });
    assert.equal(up.status, 401);
    assert.equal(up.text, 'Authentication required\n');
    const del = await request(`${s.base}/api/entry/abcdefghij`, { method: 'DELETE' });
    assert.equal(del.statusCode, 401);
    await del.body.dump();
    const forged = await upload(s.base, { size: 1000, cookie: 'sharedSecret=forged' });
    assert.equal(forged.status, 401);
  });

  test('GET /api/entry is 405 (the route is POST only)', async () => {
    const res = await request(`${s.base}/api/entry`, { headers: { cookie } });
    await res.body.dump();
    assert.equal(res.statusCode, 405);
  });

  test('upload answers {"id"} with a 10-char id; the bytes come back identical; delete removes them', async () => {
    const data = randomBytes(3 * MIB + 12345);
    const up = await upload(s.base, { cookie, data, filename: 'round trip.bin', contentType: 'application/x-standin-test', note: 'a note' });
    assert.equal(up.status, 200, up.text);
    assert.equal(up.headers['content-type'], 'application/json');
    assert.match(up.text, /^\{"id":"[^"]+"\}\n$/);
    const { id } = JSON.parse(up.text) as { id: string };
    assert.match(id, ID_RE);
    for (const path of [`/-${id}`, `/-${id}/round%20trip.bin`]) {
      const res = await request(s.base + path);
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-length'], String(data.length));
      assert.equal(res.headers['content-type'], 'application/x-standin-test');
      assert.equal(sha256(Buffer.from(await res.body.arrayBuffer())), sha256(data));
    }
    const meta = JSON.parse(await readFile(join(s.dataDir, 'entries', `${id}.json`), 'utf8')) as Record<string, unknown>;
    assert.equal(meta.filename, 'round trip.bin');
    assert.equal(meta.note, 'a note');
    assert.equal(meta.size, data.length);
    assert.deepEqual(await spoolFiles(s), [], 'the spool file is deleted before the response');

    const del = await request(`${s.base}/api/entry/${id}`, { method: 'DELETE', headers: { cookie } });
    assert.equal(del.statusCode, 200);
    assert.equal(await del.body.text(), '');
    const gone = await request(`${s.base}/-${id}`);
    await gone.body.dump();
    assert.equal(gone.statusCode, 404);
    assert.deepEqual(await readdir(join(s.dataDir, 'entries')), []);
  });

  test('DELETE: 200 for an unknown id, 400 for a malformed one; GET of an unknown id is 404', async () => {
    for (const [id, status] of [['abcdefghij', 200], ['short', 400], ['abcdefghi0', 400]] as const) {
      const res = await request(`${s.base}/api/entry/${id}`, { method: 'DELETE', headers: { cookie } });
      await res.body.dump();
      assert.equal(res.statusCode, status, id);
    }
    const res = await request(`${s.base}/-abcdefghij`);
    await res.body.dump();
    assert.equal(res.statusCode, 404);
  });

  test('expiration missing, empty, unparseable or under 1 h ahead: 400, answered before the body is read', async () => {
    const soon = new Date(Date.now() + 30 * 60 * 1000).toISOString();
    for (const query of ['', '?expiration=', '?expiration=tomorrow', `?expiration=${soon}`]) {
      const up = await upload(s.base, { cookie, size: 1000, query });
      assert.equal(up.status, 400, query);
      assert.match(up.text, /^Invalid expiration URL parameter/, query);
    }
    // The head promises 100 MiB and asks for "100 Continue"; no body follows. A
    // final 400 (and no 100 Continue) proves the answer did not wait for the body.
    const answer = await rawRequest(
      s.port,
      `POST /api/entry HTTP/1.1\r\nHost: x\r\nCookie: ${cookie}\r\nContent-Type: multipart/form-data; boundary=b\r\n` +
        `Content-Length: ${100 * MIB}\r\nExpect: 100-continue\r\n\r\n`,
    );
    assert.match(answer, /^HTTP\/1\.1 400 /);
  });

  test('the body is only read (100 Continue) once the request is acceptable', async () => {
    const answer = await rawRequest(
      s.port,
      `POST /api/entry?expiration=${NEVER} HTTP/1.1\r\nHost: x\r\nCookie: ${cookie}\r\nContent-Type: multipart/form-data; boundary=b\r\n` +
        `Content-Length: ${100 * MIB}\r\nExpect: 100-continue\r\n\r\n`,
    );
    assert.match(answer, /^HTTP\/1\.1 100 Continue/);
  });

  test('malformed multipart and invalid parts are 400', async () => {
    const raw = async (contentType: string, body: string) => {
      const res = await request(`${s.base}/api/entry?expiration=${NEVER}`, { method: 'POST', headers: { cookie, 'content-type': contentType }, body });
      return { status: res.statusCode, text: await res.body.text() };
    };
    assert.equal((await raw('multipart/form-data; boundary=zz', 'garbage without any boundary')).status, 400);
    assert.equal((await raw('multipart/form-data; boundary=zz', '--zz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\ncut sh')).status, 400);
    assert.equal((await raw('multipart/form-data', 'no boundary parameter')).status, 400);
    assert.equal((await raw('application/json', '{}')).status, 400);
    assert.equal((await upload(s.base, { cookie, size: 0 })).status, 400, 'empty file');
    assert.equal((await upload(s.base, { cookie, size: 10, filename: 'a/b' })).status, 400, 'slash in filename');
    assert.equal((await upload(s.base, { cookie, size: 10, filename: 'x'.repeat(256) })).status, 400, 'filename over 255 bytes');
    assert.equal((await upload(s.base, { cookie, size: 10, note: 'n'.repeat(501) })).status, 400, 'note over 500 bytes');
    assert.equal((await upload(s.base, { cookie, size: 10, filename: 'x'.repeat(255), note: 'n'.repeat(500) })).status, 200, 'limits are inclusive');
    assert.deepEqual(await spoolFiles(s), [], 'no spool file is left behind');
  });

  test('memory stays flat: a 256 MiB upload raises VmHWM by far less than its size', async () => {
    const before = await vmHwmBytes(s.child.pid!);
    const up = await upload(s.base, { cookie, size: 256 * MIB });
    assert.equal(up.status, 200, up.text);
    const rise = (await vmHwmBytes(s.child.pid!)) - before;
    assert.ok(rise < 64 * MIB, `VmHWM rose by ${(rise / MIB).toFixed(1)} MiB`);
    const { id } = JSON.parse(up.text) as { id: string };
    assert.equal((await stat(join(s.dataDir, 'entries', `${id}.data`))).size, 256 * MIB);
  });

  test('request log lines on stdout: method, path, status, duration', () => {
    assert.match(s.output.stdout, /POST \/api\/entry\?expiration=\S+ 200 \d+(\.\d+)?ms/);
    assert.match(s.output.stdout, /GET \/api\/entry 405 /);
    assert.match(s.output.stderr, /invalid expiration URL parameter/);
  });

  test('SIGTERM: exits 0 promptly', async () => {
    const t0 = performance.now();
    const exit = await s.stop();
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(performance.now() - t0 < 2000);
  });
});

describe('stand-in: start-up errors', () => {
  test('missing PS_SHARED_SECRET exits 1 with a message; a bad knob value exits 2', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'standin-test-'));
    tempDirs.push(dir);
    const noSecret = spawnStandin({ PORT: '1' }, [], dir);
    assert.equal((await noSecret.exited).code, 1);
    assert.match(noSecret.output.stderr, /PS_SHARED_SECRET/);
    const badKnob = spawnStandin({ PS_SHARED_SECRET: 'x', STANDIN_THROTTLE_MIBS: 'fast' }, [], dir);
    assert.equal((await badKnob.exited).code, 2);
    assert.match(badKnob.output.stderr, /throttle-mibs.*"fast"/);
  });
});

describe('stand-in: fault knobs', () => {
  test('STANDIN_THROTTLE_MIBS=10 holds a 20 MiB upload to about 10 MiB/s, spooling while it arrives', async () => {
    const s = await startStandin({ STANDIN_THROTTLE_MIBS: '10' });
    try {
      const cookie = await auth(s.base);
      const pending = upload(s.base, { cookie, size: 20 * MIB });
      await new Promise((r) => setTimeout(r, 1000));
      // Mid-upload: the spool file in TMPDIR is growing and nothing is stored yet.
      const spools = await spoolFiles(s);
      assert.equal(spools.length, 1);
      const spooled = (await stat(join(s.spoolDir, spools[0]))).size;
      assert.ok(spooled > 4 * MIB && spooled < 16 * MIB, `spooled ${spooled} bytes after 1 s`);
      assert.deepEqual(await readdir(join(s.dataDir, 'entries')), []);
      const up = await pending;
      assert.equal(up.status, 200, up.text);
      const mibs = up.bodyBytes / MIB / (up.responseMs / 1000);
      assert.ok(mibs > 8 && mibs < 10.5, `measured ${mibs.toFixed(2)} MiB/s`);
    } finally {
      await s.stop();
    }
  });

  test('--processing-delay-ms 1500 shows as time between the last byte and the response', async () => {
    const s = await startStandin({}, ['--processing-delay-ms', '1500']);
    try {
      const up = await upload(s.base, { cookie: await auth(s.base), size: MIB });
      assert.equal(up.status, 200, up.text);
      const processingMs = up.responseMs - up.lastByteMs;
      assert.ok(processingMs >= 1450 && processingMs < 3000, `processing took ${processingMs.toFixed(0)} ms`);
    } finally {
      await s.stop();
    }
  });

  test('STANDIN_CRASH_AFTER_BYTES kills the process with exit code 3 mid-upload', async () => {
    const s = await startStandin({ STANDIN_CRASH_AFTER_BYTES: String(5 * MIB) });
    const cookie = await auth(s.base);
    await assert.rejects(upload(s.base, { cookie, size: 20 * MIB }));
    assert.deepEqual(await s.exited, { code: 3, signal: null });
    assert.match(s.output.stderr, /crash knob: exiting with code 3 after \d+ upload body bytes/);
    assert.deepEqual(await spoolFiles(s), [], 'the spool is cleaned up on exit');
  });

  test('--status 503 answers every upload with 503 after reading the body', async () => {
    const s = await startStandin({}, ['--status', '503']);
    try {
      const cookie = await auth(s.base);
      for (let i = 0; i < 2; i++) {
        const up = await upload(s.base, { cookie, size: 2 * MIB });
        assert.equal(up.status, 503);
      }
      assert.deepEqual(await readdir(join(s.dataDir, 'entries')), []);
      assert.deepEqual(await spoolFiles(s), []);
    } finally {
      await s.stop();
    }
  });

  test('STANDIN_HOLD_IN_MEMORY=1 raises VmHWM by at least the upload size', async () => {
    const s = await startStandin({ STANDIN_HOLD_IN_MEMORY: '1' });
    try {
      const cookie = await auth(s.base);
      const size = 64 * MIB;
      const before = await vmHwmBytes(s.child.pid!);
      const up = await upload(s.base, { cookie, size });
      assert.equal(up.status, 200, up.text);
      const rise = (await vmHwmBytes(s.child.pid!)) - before;
      assert.ok(rise >= size, `VmHWM rose by ${(rise / MIB).toFixed(1)} MiB for a ${size / MIB} MiB upload`);
    } finally {
      await s.stop();
    }
  });
});
