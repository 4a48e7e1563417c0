// The PicoShare stand-in: an HTTP server that speaks PicoShare's upload
// contract (../shared/picoshare-api.md) and models its upload path, with fault
// knobs for testing the suite. The suite starts it like PicoShare itself:
//
//   PS_SHARED_SECRET=s PORT=4001 TMPDIR=/tmp/spool node --import tsx lib/standin/standin.mts -db data/store.db
//   STANDIN_THROTTLE_MIBS=50 ... (or --throttle-mibs 50), see USAGE below.
//
// Upload path, as in PicoShare: the `file` part is streamed to a spool file in
// TMPDIR while the body arrives (one of 1 MiB or less stays in memory, as Go's
// ParseMultipartForm(1 MiB) keeps it); only after the last byte is it copied into
// the store (DATADIR/entries/ID.data plus ID.json) in 320 KiB chunks, the spool
// is deleted, and then the response goes out. Memory stays flat at any size.
// Runs on Node 18 too (bundled by lib/standin/standin-bundle.ts for VM guests): only
// node: built-ins and busboy.

import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, unlinkSync, type WriteStream } from 'node:fs';
import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import busboy from 'busboy';

const USAGE = `Usage: standin [-db PATH] [--throttle-mibs N] [--processing-delay-ms N] [--slowdown-pct N] [--slowdown-min-bytes N]
               [--crash-after-bytes N] [--status N] [--hold-in-memory] [--corrupt-stored]
               [--download-route dash|bang] [--burn-cpu-ms N] [--download-throttle-mibs N]

  -db PATH                 store file; its folder is the data folder (default data/store.db)
  --throttle-mibs N        read upload bodies at most N MiB/s      (env STANDIN_THROTTLE_MIBS)
  --processing-delay-ms N  extra delay after the body, in ms       (env STANDIN_PROCESSING_DELAY_MS)
  --slowdown-pct N         each upload N% slower: before answering, wait N% of the
                           time spent receiving and storing it      (env STANDIN_SLOWDOWN_PCT)
  --slowdown-min-bytes N   slow only uploads of N bytes or more: one case of a
                           matrix slowed, the others not             (env STANDIN_SLOWDOWN_MIN_BYTES)
  --crash-after-bytes N    exit 3 once an upload body reached N bytes (env STANDIN_CRASH_AFTER_BYTES)
  --status N               answer every upload with HTTP status N  (env STANDIN_STATUS)
  --hold-in-memory         keep every uploaded byte in memory      (env STANDIN_HOLD_IN_MEMORY=1)
  --corrupt-stored         flip one stored byte of every upload    (env STANDIN_CORRUPT_STORED=1)
  --download-route R       serve downloads at /-{id} (dash, PicoShare 1.3.0 on) or
                           /!{id} (bang, PicoShare up to 1.2.2)    (env STANDIN_DOWNLOAD_ROUTE)
  --burn-cpu-ms N          spend N ms of CPU (user time, measured) in each
                           upload's processing phase                (env STANDIN_BURN_CPU_MS)
  --download-throttle-mibs N  send downloads at most N MiB/s        (env STANDIN_DOWNLOAD_THROTTLE_MIBS)
  --download-in-memory     read a whole file into memory to serve it (env STANDIN_DOWNLOAD_IN_MEMORY=1)

Environment: PS_SHARED_SECRET (required), PORT (default 4001),
STANDIN_HOST (bind address, default 127.0.0.1), TMPDIR (spool folder).`;

const ID_ALPHABET = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
const ID_LENGTH = 10;
const STORE_CHUNK_BYTES = 327_680; // PicoShare's entries_data row size (320 KiB)
const IN_MEMORY_FILE_BYTES = 1024 * 1024; // PicoShare's ParseMultipartForm(1 MiB): a larger file part is spooled
const MIB = 1024 * 1024;
const MIN_EXPIRATION_MS = 60 * 60 * 1000;
const MAX_NOTE_BYTES = 500;
const MAX_AUTH_BODY_BYTES = 64 * 1024;

interface Config {
  secret: string;
  port: number;
  host: string;
  dataDir: string;
  spoolDir: string;
  throttleMibs: number | null;
  processingDelayMs: number;
  /** A known proportional slowdown, for testing the statistics end to end. */
  slowdownPct: number;
  /** The slowdown applies to uploads of at least this many bytes. */
  slowdownMinBytes: number;
  crashAfterBytes: number | null;
  status: number | null;
  holdInMemory: boolean;
  corruptStored: boolean;
  /** The download route's first character: '-' (/-{id}) or '!' (/!{id}, PicoShare before 1.3.0). */
  downloadRoute: '-' | '!';
  /** A known CPU cost per upload, for testing the suite's CPU counter. */
  burnCpuMs: number;
  downloadThrottleMibs: number | null;
  /** Serve a download from the whole file read into memory, as a server whose download needs more memory than its upload. */
  downloadInMemory: boolean;
}

class UsageError extends Error {}
class HelpRequested extends Error {}

/** A request the client got wrong: answered with 400 and this message. */
class BadRequest extends Error {}

/** Flags override the matching STANDIN_* variables; bad values are usage errors. */
function parseConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const knobs: Record<string, string | undefined> = {
    'throttle-mibs': env.STANDIN_THROTTLE_MIBS,
    'processing-delay-ms': env.STANDIN_PROCESSING_DELAY_MS,
    'slowdown-pct': env.STANDIN_SLOWDOWN_PCT,
    'slowdown-min-bytes': env.STANDIN_SLOWDOWN_MIN_BYTES,
    'crash-after-bytes': env.STANDIN_CRASH_AFTER_BYTES,
    status: env.STANDIN_STATUS,
    'download-route': env.STANDIN_DOWNLOAD_ROUTE,
    'burn-cpu-ms': env.STANDIN_BURN_CPU_MS,
    'download-throttle-mibs': env.STANDIN_DOWNLOAD_THROTTLE_MIBS,
  };
  let db = 'data/store.db';
  let hold = env.STANDIN_HOLD_IN_MEMORY;
  let corrupt = env.STANDIN_CORRUPT_STORED;
  let downloadInMemory = env.STANDIN_DOWNLOAD_IN_MEMORY;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    // Go-style flags, as PicoShare's: one dash or two, `-flag value` or `-flag=value`.
    const name = flag.replace(/^--?/, '');
    if (!flag.startsWith('-')) throw new UsageError(`unexpected argument: ${argv[i]}`);
    else if (name === 'db') db = value();
    else if (name === 'hold-in-memory') hold = inline ?? '1';
    else if (name === 'corrupt-stored') corrupt = inline ?? '1';
    else if (name === 'download-in-memory') downloadInMemory = inline ?? '1';
    else if (name === 'h' || name === 'help') throw new HelpRequested();
    else if (Object.hasOwn(knobs, name)) knobs[name] = value();
    else throw new UsageError(`unknown flag: ${argv[i]}`);
  }
  const secret = env.PS_SHARED_SECRET ?? '';
  if (secret === '') throw new Error('PS_SHARED_SECRET must be set (the admin password)');
  const number = (key: string, raw: string | undefined, min: number, integer: boolean): number | null => {
    if (raw === undefined || raw === '') return null;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
      throw new UsageError(`${key}: expected ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(raw)}`);
    }
    return n;
  };
  const status = number('status', knobs.status, 100, true);
  if (status !== null && status > 599) throw new UsageError(`status: expected 100-599, got ${status}`);
  const throttle = number('throttle-mibs', knobs['throttle-mibs'], 0, false);
  if (throttle === 0) throw new UsageError('throttle-mibs: expected a number > 0, got 0');
  const route = knobs['download-route'] || 'dash';
  if (route !== 'dash' && route !== 'bang') throw new UsageError(`download-route: expected dash or bang, got ${JSON.stringify(route)}`);
  const downloadThrottle = number('download-throttle-mibs', knobs['download-throttle-mibs'], 0, false);
  if (downloadThrottle === 0) throw new UsageError('download-throttle-mibs: expected a number > 0, got 0');
  return {
    secret,
    port: number('PORT', env.PORT, 0, true) ?? 4001,
    host: env.STANDIN_HOST || '127.0.0.1',
    dataDir: dirname(resolve(db)),
    spoolDir: tmpdir(),
    throttleMibs: throttle,
    processingDelayMs: number('processing-delay-ms', knobs['processing-delay-ms'], 0, true) ?? 0,
    slowdownPct: number('slowdown-pct', knobs['slowdown-pct'], 0, false) ?? 0,
    slowdownMinBytes: number('slowdown-min-bytes', knobs['slowdown-min-bytes'], 0, true) ?? 0,
    crashAfterBytes: number('crash-after-bytes', knobs['crash-after-bytes'], 1, true),
    status,
    holdInMemory: isOn(hold),
    corruptStored: isOn(corrupt),
    downloadRoute: route === 'bang' ? '!' : '-',
    burnCpuMs: number('burn-cpu-ms', knobs['burn-cpu-ms'], 0, true) ?? 0,
    downloadThrottleMibs: downloadThrottle,
    downloadInMemory: isOn(downloadInMemory),
  };
}

// ---- small pure checks -------------------------------------------------------

function isOn(v: string | undefined): boolean {
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

function isEntryId(s: string): boolean {
  return s.length === ID_LENGTH && [...s].every((c) => ID_ALPHABET.includes(c));
}

function newEntryId(): string {
  let id = '';
  for (let i = 0; i < ID_LENGTH; i++) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  return id;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** The expiration query value as a time, or the reason it is not acceptable. */
function parseExpiration(raw: string | null, now: number): number | string {
  if (raw === null || raw === '') return 'missing expiration';
  const t = Date.parse(raw);
  if (!RFC3339.test(raw) || Number.isNaN(t)) return `cannot parse ${JSON.stringify(raw)} as RFC3339`;
  if (t - now < MIN_EXPIRATION_MS) return 'expiration must be at least one hour in the future';
  return t;
}

/** Go's filepath.Base, which mime/multipart applies to every part's filename before PicoShare sees it. */
function goBase(name: string): string {
  const trimmed = name.replace(/\/+$/, '');
  if (trimmed === '') return '/';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** Why PicoShare would refuse this filename (its parse.Filename rules, after goBase), or null when it is fine. */
function filenameProblem(name: string): string | null {
  const bytes = Buffer.byteLength(name);
  if (bytes === 0) return 'filename must be non-empty';
  if (bytes > 255) return `filename too long (${bytes} bytes, the limit is 255)`;
  if (name === '.' || name.startsWith('..')) return 'filename cannot begin with dots';
  if (/[\\/\x07\x08\t\n\x0b\x0c\r]/.test(name)) return 'illegal characters in filename';
  return null;
}

function cookieValue(secret: string): string {
  // Derived from the secret, so a cookie survives a restart as PicoShare's does.
  return createHash('sha256').update(`picoshare-standin:${secret}`).digest('hex');
}

function hasAuthCookie(req: IncomingMessage, expected: string): boolean {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, v] = part.trim().split(/=(.*)/s, 2);
    if (k === 'sharedSecret' && v === expected) return true;
  }
  return false;
}

// ---- the server ----------------------------------------------------------------

const spools = new Set<string>();
/** STANDIN_HOLD_IN_MEMORY: every uploaded byte, kept alive on purpose. */
const held: Buffer[] = [];

/** Responses whose client sent `Expect: 100-continue` and still waits for it. */
const expectingContinue = new WeakSet<ServerResponse>();

function startReadingBody(res: ServerResponse): void {
  if (expectingContinue.delete(res)) res.writeContinue();
}

interface Reply {
  status: number;
  contentType: string;
  body: string;
}

/** Like Go's http.Error: the message and a newline as text/plain. */
const textReply = (status: number, message: string): Reply => ({ status, contentType: 'text/plain; charset=utf-8', body: `${message}\n` });

function send(res: ServerResponse, reply: Reply): void {
  res.writeHead(reply.status, { 'Content-Type': reply.contentType });
  res.end(reply.body);
}

function sendText(res: ServerResponse, status: number, message: string): void {
  send(res, textReply(status, message));
}

/**
 * Counts the upload body as it passes (crash knob), copies it when holding
 * memory, and throttles: when ahead of the allowed rate it delays its callback,
 * which makes pipe() pause the request stream (and TCP pushes back on the
 * client) until the schedule catches up.
 */
class BodyMeter extends Transform {
  bytes = 0;
  private started = 0;
  constructor(private readonly cfg: Config) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.bytes === 0) this.started = performance.now();
    this.bytes += chunk.length;
    const { crashAfterBytes, throttleMibs, holdInMemory } = this.cfg;
    if (crashAfterBytes !== null && this.bytes >= crashAfterBytes) {
      process.stderr.write(`standin: crash knob: exiting with code 3 after ${this.bytes} upload body bytes (limit ${crashAfterBytes})\n`);
      process.exit(3);
    }
    if (holdInMemory) {
      // A fresh allocation filled by the copy: every page is written, so resident.
      const copy = Buffer.allocUnsafeSlow(chunk.length);
      chunk.copy(copy);
      held.push(copy);
    }
    this.push(chunk);
    if (throttleMibs === null) return done();
    paced(done, this.bytes, throttleMibs, this.started);
  }
}

/** Calls `done` once `bytes` at `mibs` MiB/s since `started` are due: a stream that runs ahead waits. */
function paced(done: TransformCallback, bytes: number, mibs: number, started: number): void {
  const aheadMs = (bytes / (mibs * MIB)) * 1000 - (performance.now() - started);
  if (aheadMs > 1) setTimeout(done, aheadMs);
  else done();
}

/** Passes bytes on at most `mibs` MiB/s (STANDIN_DOWNLOAD_THROTTLE_MIBS), delaying its callback as BodyMeter does. */
class Throttle extends Transform {
  private bytes = 0;
  private started = 0;
  constructor(private readonly mibs: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.bytes === 0) this.started = performance.now();
    this.bytes += chunk.length;
    this.push(chunk);
    paced(done, this.bytes, this.mibs, this.started);
  }
}

/** STANDIN_BURN_CPU_MS: computes until this process has used `ms` more of user CPU time (measured, not wall time). */
function burnCpu(ms: number): void {
  const until = process.cpuUsage().user + ms * 1000;
  let x = 0;
  while (process.cpuUsage().user < until) for (let i = 0; i < 1e5; i++) x = (x * 31 + i) % 1000003;
  if (x < 0) console.log(x); // keeps the loop from being optimised away
}

interface Received {
  /** Where the `file` part is: spooled (over 1 MiB), or in memory; neither when none came. */
  spoolPath: string | null;
  inMemory: Buffer | null;
  size: number;
  filename: string;
  contentType: string;
  note: string;
  problem: string | null;
}

/**
 * Where a file part goes as it arrives: memory up to IN_MEMORY_FILE_BYTES, as
 * Go's ParseMultipartForm keeps it; past that, the part so far and the rest
 * to a spool file at `spoolPath()`, opened only then.
 */
class PartSink extends Writable {
  size = 0;
  private head: Buffer[] = [];
  private file: WriteStream | null = null;
  constructor(private readonly spoolPath: () => string) {
    super({ highWaterMark: MIB });
  }
  /** Settles once the spool file, if one was opened, is closed. */
  spoolClosed(): Promise<void> {
    const file = this.file;
    return file === null || file.closed ? Promise.resolve() : new Promise((resolve) => file.once('close', () => resolve()));
  }
  /** The whole part when it stayed in memory, else null. */
  inMemory(): Buffer | null {
    return this.file === null ? Buffer.concat(this.head) : null;
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.size += chunk.length;
    if (this.file === null) {
      this.head.push(chunk);
      if (this.size <= IN_MEMORY_FILE_BYTES) return done();
      this.file = createWriteStream(this.spoolPath(), { highWaterMark: MIB });
      this.file.on('error', (err) => this.destroy(err));
      chunk = Buffer.concat(this.head);
      this.head = [];
    }
    if (this.file.write(chunk)) done();
    else this.file.once('drain', () => done());
  }
  override _final(done: (err?: Error | null) => void): void {
    if (this.file === null) return done();
    this.file.end(() => done()); // once the spool is flushed (spoolClosed() waits for its close)
  }
  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.file?.destroy();
    done(err);
  }
}

/**
 * Reads the whole multipart body, spooling the `file` part to TMPDIR as it
 * arrives. On failure the spool is removed here; on success the caller owns it.
 */
function receiveUpload(req: IncomingMessage, res: ServerResponse, cfg: Config): Promise<Received> {
  return new Promise((resolvePromise, reject) => {
    startReadingBody(res);
    const got: Received = { spoolPath: null, inMemory: null, size: 0, filename: '', contentType: '', note: '', problem: null };
    const writes: Promise<void>[] = [];
    let fileStream: Readable | null = null;
    let sink: PartSink | null = null;
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      req.unpipe();
      req.resume(); // read and drop the rest so a 400 can still be sent
      fileStream?.destroy(); // closes the spool file
      // Removed once closed: a spool still being opened would otherwise appear after its removal.
      const removed = (sink?.spoolClosed() ?? Promise.resolve()).then(() => (got.spoolPath === null ? undefined : removeSpool(got.spoolPath)));
      removed.finally(() => reject(err)).catch(() => {});
    };
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, preservePath: true, limits: { fieldSize: 64 * 1024, parts: 100 } });
    } catch (err) {
      fail(new BadRequest(`malformed multipart request: ${(err as Error).message}`));
      return;
    }
    parser.on('file', (name, stream, info) => {
      if (name !== 'file' || sink !== null || got.problem !== null) {
        stream.resume();
        return;
      }
      got.filename = info.filename ? goBase(info.filename) : '';
      got.contentType = info.mimeType;
      got.problem = filenameProblem(got.filename);
      if (got.problem !== null) {
        stream.resume();
        return;
      }
      const out = sink = new PartSink(() => {
        got.spoolPath = join(cfg.spoolDir, `standin-multipart-${randomBytes(8).toString('hex')}`);
        spools.add(got.spoolPath);
        return got.spoolPath;
      });
      fileStream = stream;
      const written = pipeline(stream, out).then(() => {
        got.size = out.size;
        got.inMemory = out.inMemory();
      });
      // A spool that cannot be written (TMPDIR full) is a 400 in PicoShare; failing at once also
      // drains the rest of the body, where waiting for the parser would stall the client for good.
      written.catch((err: Error) => fail(new BadRequest(`spooling the upload failed: ${err.message}`)));
      writes.push(written);
    });
    parser.on('field', (name, value, info) => {
      if (name !== 'note') return;
      if (info.valueTruncated || Buffer.byteLength(value) > MAX_NOTE_BYTES) got.problem ??= `note is longer than ${MAX_NOTE_BYTES} bytes`;
      else got.note = value;
    });
    parser.on('error', (err: Error) => fail(new BadRequest(`malformed multipart request: ${err.message}`)));
    parser.on('close', () => {
      Promise.all(writes).then(() => {
        if (settled) return;
        settled = true;
        resolvePromise(got);
      }, fail);
    });
    const aborted = (): void => fail(new Error('client closed the connection mid-upload'));
    req.on('close', () => {
      if (!req.complete) aborted();
    });
    req.on('error', aborted);
    req.pipe(new BodyMeter(cfg)).pipe(parser);
  });
}

/** STANDIN_CORRUPT_STORED: the stored copy differs from what was sent, as a broken store would. */
async function flipFirstByte(file: string): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 0);
    b[0] ^= 0xff;
    await fh.write(b, 0, 1, 0);
  } finally {
    await fh.close();
  }
}

/** Copies the file part (spool or memory) into the store in PicoShare's 320 KiB chunks; one buffer, reused. */
async function copyInChunks(from: string | Buffer, to: string): Promise<number> {
  const src = typeof from === 'string' ? await open(from, 'r') : null;
  try {
    const dst = await open(to, 'w');
    try {
      const buf = Buffer.allocUnsafe(STORE_CHUNK_BYTES);
      let total = 0;
      for (;;) {
        const bytesRead = src !== null
          ? (await src.read(buf, 0, STORE_CHUNK_BYTES, total)).bytesRead
          : (from as Buffer).copy(buf, 0, total, total + STORE_CHUNK_BYTES);
        if (bytesRead === 0) return total;
        await dst.write(buf, 0, bytesRead, total);
        total += bytesRead;
      }
    } finally {
      await dst.close();
    }
  } finally {
    await src?.close();
  }
}

interface EntryMeta {
  id: string;
  filename: string;
  contentType: string;
  size: number;
  note: string;
  uploaded: string;
  expires: string;
}

function entryPaths(cfg: Config, id: string): { data: string; meta: string } {
  const dir = join(cfg.dataDir, 'entries');
  return { data: join(dir, `${id}.data`), meta: join(dir, `${id}.json`) };
}

/** The processing phase: the body is complete, the response not yet sent. */
async function storeUpload(got: Received, cfg: Config, expiration: number): Promise<Reply> {
  if (cfg.processingDelayMs > 0) await sleep(cfg.processingDelayMs);
  if (cfg.burnCpuMs > 0) burnCpu(cfg.burnCpuMs);
  if (cfg.status !== null) return textReply(cfg.status, `standin: status knob answers ${cfg.status}`);
  if (got.problem !== null) throw new BadRequest(got.problem);
  if (got.spoolPath === null && got.inMemory === null) throw new BadRequest('no part named "file"');
  if (got.size === 0) throw new BadRequest('file is empty');
  const id = newEntryId();
  const paths = entryPaths(cfg, id);
  const meta: EntryMeta = {
    id,
    filename: got.filename,
    contentType: got.contentType,
    size: got.size,
    note: got.note,
    uploaded: new Date().toISOString(),
    expires: new Date(expiration).toISOString(),
  };
  try {
    await copyInChunks(got.inMemory ?? got.spoolPath!, paths.data);
    if (cfg.corruptStored) await flipFirstByte(paths.data);
    await writeFile(paths.meta, JSON.stringify(meta)); // written last: the entry exists once this does
  } catch (err) {
    // As PicoShare's SQLite rolls a failed insert back: a full disk stays usable for the next upload.
    await Promise.all([rm(paths.data, { force: true }), rm(paths.meta, { force: true })]);
    throw err;
  }
  return { status: 200, contentType: 'application/json', body: `${JSON.stringify({ id })}\n` };
}

function badUpload(err: BadRequest): Reply {
  console.error(`standin: invalid upload: ${err.message}`);
  return textReply(400, `invalid request: ${err.message}`);
}

async function handleUpload(req: IncomingMessage, res: ServerResponse, cfg: Config, url: URL): Promise<void> {
  const started = performance.now();
  const expiration = parseExpiration(url.searchParams.get('expiration'), Date.now());
  if (typeof expiration === 'string') {
    console.error(`standin: invalid expiration URL parameter: ${expiration}`);
    return sendText(res, 400, `Invalid expiration URL parameter: ${expiration}`);
  }
  let got: Received;
  try {
    got = await receiveUpload(req, res, cfg);
  } catch (err) {
    if (!(err instanceof BadRequest)) return console.error(`standin: upload aborted: ${(err as Error).message}`);
    return send(res, badUpload(err));
  }
  let reply: Reply;
  try {
    reply = await storeUpload(got, cfg, expiration);
  } catch (err) {
    if (err instanceof BadRequest) reply = badUpload(err);
    else {
      console.error(`standin: failed to insert uploaded file into data store: ${(err as Error).stack}`);
      reply = textReply(500, 'failed to insert file into database');
    }
  } finally {
    // As in PicoShare, the spool is gone before the client hears back.
    if (got.spoolPath !== null) await removeSpool(got.spoolPath);
  }
  // STANDIN_SLOWDOWN_PCT: the whole upload takes N% longer, however long its work took (size, disk, load).
  // Logged with what was added, so a test can check the knob on each upload rather than against another process's time.
  if (cfg.slowdownPct > 0 && got.size >= cfg.slowdownMinBytes) {
    const workMs = performance.now() - started;
    const until = started + workMs * (1 + cfg.slowdownPct / 100);
    // Node's timers run on the event loop's millisecond clock and can fire a little early against performance.now()
    // (CI: 265.8 ms added for 266.9 ms of work): the rest is waited out, so the slowdown is never short.
    for (let left = until - performance.now(); left > 0; left = until - performance.now()) await sleep(left);
    console.log(`standin: slowdown ${cfg.slowdownPct}%: ${workMs.toFixed(1)} ms of work, ${(performance.now() - started - workMs).toFixed(1)} ms added`);
  }
  send(res, reply);
}

async function removeSpool(path: string): Promise<void> {
  await rm(path, { force: true });
  spools.delete(path);
}

async function handleAuth(req: IncomingMessage, res: ServerResponse, cfg: Config): Promise<void> {
  startReadingBody(res);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_AUTH_BODY_BYTES) return sendText(res, 400, 'Invalid request');
    chunks.push(chunk);
  }
  let key: unknown;
  try {
    key = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { sharedSecretKey?: unknown })?.sharedSecretKey;
  } catch {
    return sendText(res, 400, 'Invalid request');
  }
  if (typeof key !== 'string' || key === '') return sendText(res, 400, 'Invalid request');
  const given = createHash('sha256').update(key).digest();
  const wanted = createHash('sha256').update(cfg.secret).digest();
  if (!timingSafeEqual(given, wanted)) return sendText(res, 401, 'Incorrect shared secret');
  const maxAge = 30 * 24 * 60 * 60;
  res.writeHead(200, {
    'Set-Cookie': `sharedSecret=${cookieValue(cfg.secret)}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict`,
  });
  res.end();
}

async function handleDownload(req: IncomingMessage, res: ServerResponse, cfg: Config, id: string): Promise<void> {
  if (!isEntryId(id)) return sendText(res, 400, `bad entry ID: ${JSON.stringify(id)}`);
  const paths = entryPaths(cfg, id);
  let meta: EntryMeta;
  try {
    meta = JSON.parse(await readFile(paths.meta, 'utf8')) as EntryMeta;
  } catch {
    return sendText(res, 404, 'entry not found');
  }
  const { size } = await stat(paths.data);
  res.writeHead(200, { 'Content-Type': meta.contentType || 'application/octet-stream', 'Content-Length': size });
  if (req.method === 'HEAD') return void res.end();
  if (cfg.downloadInMemory) {
    const whole = await readFile(paths.data);
    res.end(whole);
    await finished(res).catch(() => { /* a client that hung up */ });
    return;
  }
  // A client may hang up once it has the status (the suite's route probe does): not a server error, as in Go.
  const file = createReadStream(paths.data, { highWaterMark: MIB });
  const sent = cfg.downloadThrottleMibs === null ? pipeline(file, res) : pipeline(file, new Throttle(cfg.downloadThrottleMibs), res);
  await sent.catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ERR_STREAM_PREMATURE_CLOSE') throw e;
  });
}

async function handleDelete(res: ServerResponse, cfg: Config, id: string): Promise<void> {
  if (!isEntryId(id)) return sendText(res, 400, `bad entry ID: ${JSON.stringify(id)}`);
  const paths = entryPaths(cfg, id);
  await rm(paths.meta, { force: true });
  await rm(paths.data, { force: true });
  res.writeHead(200);
  res.end();
}

async function route(req: IncomingMessage, res: ServerResponse, cfg: Config): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://standin');
  const path = url.pathname;
  const method = req.method ?? 'GET';
  const authed = (): boolean => {
    if (hasAuthCookie(req, cookieValue(cfg.secret))) return true;
    sendText(res, 401, 'Authentication required');
    return false;
  };
  const methodNotAllowed = (allow: string): void => {
    res.writeHead(405, { Allow: allow });
    res.end();
  };

  if (path === '/') {
    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed('GET');
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    return void res.end('<!doctype html><title>PicoShare stand-in</title><p>PicoShare stand-in is up.</p>\n');
  }
  if (path === '/api/auth') {
    if (method !== 'POST') return methodNotAllowed('POST');
    return handleAuth(req, res, cfg);
  }
  if (path === '/api/entry') {
    if (method !== 'POST') return methodNotAllowed('POST');
    if (authed()) return handleUpload(req, res, cfg, url);
    return;
  }
  const entry = /^\/api\/entry\/([^/]*)$/.exec(path);
  if (entry) {
    if (method !== 'DELETE') return methodNotAllowed('DELETE');
    // A malformed %-escape is a malformed id (Go's server answers 400 before any handler).
    let id: string;
    try { id = decodeURIComponent(entry[1]); } catch { return sendText(res, 400, `bad entry ID: ${JSON.stringify(entry[1])}`); }
    if (authed()) return handleDelete(res, cfg, id);
    return;
  }
  const download = /^\/([-!])([^/]+)(\/[^/]*)?$/.exec(path);
  if (download && download[1] === cfg.downloadRoute) {
    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed('GET');
    return handleDownload(req, res, cfg, download[2]);
  }
  sendText(res, 404, '404 page not found');
}

function logRequest(req: IncomingMessage, res: ServerResponse, started: number): void {
  res.on('close', () => {
    const ms = (performance.now() - started).toFixed(1);
    const status = res.writableFinished ? String(res.statusCode) : `${res.headersSent ? res.statusCode : '-'} (connection closed)`;
    console.log(`${new Date().toISOString()} ${req.method} ${req.url} ${status} ${ms}ms`);
  });
}

function main(): void {
  let cfg: Config;
  try {
    cfg = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof HelpRequested) {
      console.log(USAGE);
      process.exit(0);
    }
    if (err instanceof UsageError) {
      console.error(`standin: ${err.message}\n\n${USAGE}`);
      process.exit(2);
    }
    console.error(`standin: ${(err as Error).message}`);
    process.exit(1);
  }
  mkdirSync(join(cfg.dataDir, 'entries'), { recursive: true });

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    logRequest(req, res, performance.now());
    route(req, res, cfg).catch((err: Error) => {
      console.error(`standin: ${req.method} ${req.url}: ${err.stack}`);
      if (!res.headersSent) sendText(res, 500, 'internal error');
      else res.destroy();
    });
  };
  const server = createServer(handle);
  // As in Go, "100 Continue" goes out only when a handler starts reading the
  // body, so an early 400/401 spares an `Expect: 100-continue` client the upload.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    expectingContinue.add(res);
    handle(req, res);
  });
  // Large uploads to a slow or throttled server run for many minutes: no request deadline.
  server.requestTimeout = 0;
  server.on('error', (err) => {
    console.error(`standin: cannot listen on ${cfg.host}:${cfg.port}: ${err.message}`);
    process.exit(1);
  });
  server.listen(cfg.port, cfg.host, () => {
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : cfg.port;
    const knobs = [
      cfg.throttleMibs !== null && `throttle ${cfg.throttleMibs} MiB/s`,
      cfg.processingDelayMs > 0 && `processing delay ${cfg.processingDelayMs} ms`,
      cfg.slowdownPct > 0 && `slowdown ${cfg.slowdownPct}%${cfg.slowdownMinBytes > 0 ? ` from ${cfg.slowdownMinBytes} bytes` : ''}`,
      cfg.crashAfterBytes !== null && `crash after ${cfg.crashAfterBytes} bytes`,
      cfg.status !== null && `status ${cfg.status}`,
      cfg.holdInMemory && 'hold in memory',
      cfg.corruptStored && 'corrupt stored',
      cfg.burnCpuMs > 0 && `burn ${cfg.burnCpuMs} ms CPU`,
      cfg.downloadThrottleMibs !== null && `download throttle ${cfg.downloadThrottleMibs} MiB/s`,
      cfg.downloadInMemory && 'download in memory',
    ].filter(Boolean);
    console.log(`standin: listening on http://${cfg.host}:${port} (data ${cfg.dataDir}, spool ${cfg.spoolDir}, knobs: ${knobs.join(', ') || 'none'})`);
  });

  // Spools of uploads cut short by a signal or the crash knob are not left behind.
  process.on('exit', () => {
    for (const path of spools) {
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    }
  });
  // As PicoShare: requests in flight get 5 s to finish, then the process exits 1 with them still running; a
  // second signal exits 1 at once. Idle, it exits 0 straight away.
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      console.error(`standin: ${signal} again, exiting now`);
      process.exit(1);
    }
    stopping = true;
    console.log(`standin: ${signal}, shutting down`);
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => {
      console.error('standin: requests still running after 5 s, exiting');
      process.exit(1);
    }, 5000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main();
