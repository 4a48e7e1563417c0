// The HTTP client, on undici: authenticate, upload with a hand-built streaming
// multipart body, download and hash, delete. The body is built by hand because
// undici's FormData + openAsBlob buffers the whole file (1.1 GiB RSS for 1 GiB,
// see field notes); a preamble, the file in 4 MiB reads and an epilogue with an
// explicit content-length keep memory flat and run near curl's speed.
//   const cookie = await authenticate(url, secret)
//   const r = await upload({ baseUrl: url, cookie, file, timeoutMs })
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import v8 from 'node:v8';
import { Agent, request, stream } from 'undici';

let agent: Agent | null = null;

/**
 * The connection pool, made at the first request. undici parses HTTP with
 * llhttp compiled to WebAssembly on the first connection, and V8's optimizing
 * tier (TurboFan) recompiles it in the background once it runs hot, mid-upload:
 * about 30 MiB of transient memory, a third of the client's peak RSS (bench/).
 * The baseline tier (Liftoff) parses a few response headers just as well, so
 * the flag is set before any connection exists; but not at import: it holds
 * for the whole process, and the test files' generator (WebAssembly too) runs
 * 3-4x slower under it (measured 0.55 s against 0.19 s per GiB). A run makes
 * its test files before its first request.
 */
function dispatcher(): Agent {
  if (!agent) {
    v8.setFlagsFromString('--liftoff-only');
    // Timeouts are enforced by the caller's deadline (AbortSignal), not undici's defaults (300 s would cut a long processing phase).
    agent = new Agent({ headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 1000 });
  }
  return agent;
}

/** PicoShare's way of saying "never expires" (the owner must send an expiration). */
const NEVER = '2999-12-31T00:00:00Z';
/** 4 MiB reads: about 0.2 CPU seconds per GiB less than 1 MiB ones (fewer hops), +9 MiB RSS for the ring (bench/). */
const READ_SIZE = 4 * 1024 * 1024;
/** Buffers the file is read into, in turn (see upload()). */
const RING_SIZE = 3;

/** The server refused the secret itself: the same secret will be refused by every server the run starts. */
export class AuthError extends Error {}

/**
 * POST /api/auth; returns the cookie header value. Throws AuthError on a rejected
 * secret, a plain Error for anything else (another status, a broken connection, an
 * abort): a failing server, which is a result, not bad input.
 */
export async function authenticate(baseUrl: string, secret: string, signal?: AbortSignal): Promise<string> {
  const res = await request(new URL('/api/auth', baseUrl), {
    method: 'POST', dispatcher: dispatcher(), signal,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sharedSecretKey: secret }),
  });
  const text = (await res.body.text()).trim();
  // PicoShare answers a wrong secret with 401; 403 ("forbidden") from it or a proxy in front says the same.
  if (res.statusCode === 401 || res.statusCode === 403) throw new AuthError(`authentication rejected by the server (HTTP ${res.statusCode}): check PS_SHARED_SECRET`);
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${text.split('\n')[0].slice(0, 200)}`);
  const setCookie = res.headers['set-cookie'];
  const first = Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [];
  const cookie = first.map((c) => c.split(';')[0]).find((c) => c.startsWith('sharedSecret='));
  if (!cookie) throw new Error('HTTP 200 without a sharedSecret cookie');
  return cookie;
}

export interface UploadOptions {
  baseUrl: string;
  cookie: string;
  file: string;
  /** Whole-request deadline, from request start to the end of the response. */
  timeoutMs: number;
  /** Called with bytes of the file sent so far; cheap, called once per 4 MiB read. */
  onProgress?: (sentBytes: number) => void;
  /** Aborts the upload from outside (Ctrl-C). */
  signal?: AbortSignal;
}

export interface UploadResult {
  status: number | null;
  id: string | null;
  /** Response body (trimmed, at most 1 KiB) for failure reports. */
  body: string;
  /** Request start to last body byte handed to the socket. */
  transferSeconds: number | null;
  /** Last byte sent to response headers. */
  processingSeconds: number | null;
  /** Request start to response end, or to the failure. */
  durationSeconds: number;
  /** Multipart body bytes sent (equals contentLength on success). */
  bodyBytesSent: number;
  contentLength: number;
  timedOut: boolean;
  /** Network or abort error, when there was no response. */
  error: Error | null;
}

/** The multipart framing around the file, so its exact length is known before sending. */
export function multipartFraming(fileName: string, boundary: string) {
  const preamble = Buffer.from(
    `--${boundary}\r\n` +
    `Content-Disposition: form-data; name="file"; filename="${fileName}"\r\n` +
    'Content-Type: application/octet-stream\r\n\r\n',
  );
  const epilogue = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { preamble, epilogue, contentType: `multipart/form-data; boundary=${boundary}` };
}

const seconds = (from: bigint, to: bigint) => Number(to - from) / 1e9;

export async function upload(opts: UploadOptions): Promise<UploadResult> {
  const fileBytes = fs.statSync(opts.file).size;
  const boundary = `----ups${crypto.randomBytes(12).toString('hex')}`;
  const { preamble, epilogue, contentType } = multipartFraming(path.basename(opts.file), boundary);
  const contentLength = preamble.length + fileBytes + epilogue.length;
  const deadline = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([deadline, opts.signal]) : deadline;

  let bodyBytesSent = 0;
  let lastByteAt: bigint | null = null;
  async function* body() {
    yield preamble;
    bodyBytesSent += preamble.length;
    // The file is read into a ring of reused buffers, not a fresh buffer per read: fresh ones
    // cost a page fault per 4 KiB and pile up until GC (about 2x the CPU and +40 MiB RSS, see
    // bench/). Reuse is safe because undici asks for the next chunk only once socket.write()
    // returned true (under 16 KiB still queued, all of it the latest chunk) or after 'drain'
    // (nothing queued), so only the previous chunk can still be in use; and every upload's
    // download is checked against the file's sha256, so a reused buffer sent too early would
    // show as an integrity_error, never as a good result.
    const ring = Array.from({ length: RING_SIZE }, () => Buffer.allocUnsafeSlow(READ_SIZE));
    // Synchronous reads: the file is a cached test file (re-hashed just before the run), so a
    // 4 MiB read is a memcpy; the thread-pool round trip of an async read cost about 25% more
    // CPU per GiB and two more wake-ups per read, which a busy host makes slow (bench/).
    const fd = fs.openSync(opts.file, 'r');
    try {
      for (let fileSent = 0, i = 0; ; i++) {
        const buf = ring[i % RING_SIZE];
        const bytesRead = fs.readSync(fd, buf, 0, READ_SIZE, fileSent);
        if (bytesRead === 0) break;
        yield bytesRead === READ_SIZE ? buf : buf.subarray(0, bytesRead);
        fileSent += bytesRead;
        bodyBytesSent += bytesRead;
        opts.onProgress?.(fileSent);
      }
    } finally {
      fs.closeSync(fd);
    }
    yield epilogue;
    bodyBytesSent += epilogue.length;
    // Resumed only once undici has taken the epilogue: the last byte is on its way.
    lastByteAt = process.hrtime.bigint();
  }

  const url = new URL('/api/entry', opts.baseUrl);
  url.searchParams.set('expiration', NEVER);
  const start = process.hrtime.bigint();
  const result = (partial: Partial<UploadResult>): UploadResult => ({
    status: null, id: null, body: '', transferSeconds: lastByteAt ? seconds(start, lastByteAt) : null,
    processingSeconds: null, durationSeconds: seconds(start, process.hrtime.bigint()),
    bodyBytesSent, contentLength, timedOut: deadline.aborted, error: null, ...partial,
  });
  try {
    const res = await request(url, {
      method: 'POST', dispatcher: dispatcher(), signal,
      headers: { 'content-type': contentType, 'content-length': String(contentLength), cookie: opts.cookie },
      // undici takes an async iterable body (its docs say so; its typings don't), pulling one chunk at a
      // time: no stream buffer sits between the generator and the socket, so lastByteAt stays honest.
      body: body() as unknown as Readable,
    });
    const headersAt = process.hrtime.bigint();
    const text = (await res.body.text()).trim();
    let id: string | null = null;
    if (res.statusCode === 200) {
      try { id = (JSON.parse(text) as { id?: string }).id ?? null; } catch { id = null; }
    }
    return result({
      status: res.statusCode, id, body: text.slice(0, 1024),
      processingSeconds: lastByteAt ? seconds(lastByteAt, headersAt) : null,
    });
  } catch (e) {
    return result({ error: e as Error });
  }
}

/** A verification download: what came back, and how fast. */
export interface DownloadResult {
  status: number;
  sha256: string;
  bytes: number;
  /** Request start to the first body byte (to the headers for an empty body). */
  ttfbSeconds: number;
  /** Request start to the last body byte. */
  seconds: number;
}

/**
 * Where a server serves an entry's download: `/-{id}` from PicoShare 1.3.0 on,
 * `/!{id}` up to 1.2.2 (1.3.0 through 1.4.x serve both).
 */
export type DownloadRoute = '-' | '!';

/**
 * The route this server serves `id` at: `/-{id}` when it answers 200 (or 206), else
 * `/!{id}` when that does, else `/-{id}` (whose failure the download then
 * reports). Only the status is read: one byte is asked for, and any more dropped.
 */
export async function findDownloadRoute(baseUrl: string, id: string, timeoutMs = 30_000): Promise<DownloadRoute> {
  for (const route of ['-', '!'] as const) {
    // PicoShare serves downloads with Go's ServeContent: one byte (206); a server that ignores Range, all (200).
    const res = await request(new URL(`/${route}${id}`, baseUrl), {
      dispatcher: dispatcher(), headers: { range: 'bytes=0-0' }, signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body.dump({ limit: 64 * 1024 }); // beyond that, the connection is closed: the rest is not read
    if (res.statusCode === 200 || res.statusCode === 206) return route;
  }
  return '-';
}

/**
 * GET /-{id} (or /!{id}, see findDownloadRoute), hashing the bytes as they stream. undici's stream() hands the
 * body straight to a Writable that hashes it: no Readable and async iterator
 * in between, about 25% less CPU per GiB than request() (bench/).
 */
export async function downloadSha256(
  baseUrl: string, id: string, timeoutMs: number, route: DownloadRoute = '-', signal?: AbortSignal, onProgress?: (receivedBytes: number) => void,
): Promise<DownloadResult> {
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  let status = 0;
  const start = process.hrtime.bigint();
  let firstByteAt: bigint | null = null;
  await stream(new URL(`/${route}${id}`, baseUrl), { method: 'GET', dispatcher: dispatcher(), signal: signal ? AbortSignal.any([AbortSignal.timeout(timeoutMs), signal]) : AbortSignal.timeout(timeoutMs) }, ({ statusCode }) => {
    status = statusCode;
    return new Writable({
      write(chunk: Buffer, _enc, done) {
        firstByteAt ??= process.hrtime.bigint();
        hash.update(chunk);
        bytes += chunk.length;
        onProgress?.(bytes);
        done();
      },
    });
  });
  const end = process.hrtime.bigint();
  return { status, sha256: hash.digest('hex'), bytes, ttfbSeconds: seconds(start, firstByteAt ?? end), seconds: seconds(start, end) };
}

/** DELETE /api/entry/{id}; returns the status. */
export async function deleteEntry(baseUrl: string, cookie: string, id: string, timeoutMs = 30_000): Promise<number> {
  const res = await request(new URL(`/api/entry/${id}`, baseUrl), {
    method: 'DELETE', dispatcher: dispatcher(), headers: { cookie }, signal: AbortSignal.timeout(timeoutMs),
  });
  await res.body.dump();
  return res.statusCode;
}

/** What GET / got: 200 (ready), or what the server did instead, in words without timings (two alike are the same answer). */
export type RootAnswer = { ready: true } | { ready: false; answer: string };

/** GET / once: 200 = ready; else the status and the body's first line, "connection refused", or the error. */
export async function probeRoot(baseUrl: string): Promise<RootAnswer> {
  try {
    const res = await request(new URL('/', baseUrl), { dispatcher: dispatcher(), signal: AbortSignal.timeout(2000) });
    if (res.statusCode === 200) {
      await res.body.dump();
      return { ready: true };
    }
    // The first line is all a message needs; a server may answer with a whole page.
    const first = (await res.body.text()).trim().split('\n')[0].slice(0, 200);
    return { ready: false, answer: `GET / answered ${res.statusCode}${first ? `: ${first}` : ' with an empty body'}` };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED') return { ready: false, answer: 'GET / connection refused' };
    if ((e as Error).name === 'TimeoutError') return { ready: false, answer: 'GET / no answer within 2 s' };
    return { ready: false, answer: `GET / failed: ${code ?? (e as Error).message.split('\n')[0]}` };
  }
}

/** Closes pooled connections so the process can exit promptly. */
export async function closeClient(): Promise<void> {
  await agent?.close();
  agent = null;
}
