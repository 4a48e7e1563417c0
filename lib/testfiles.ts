// Test files: one per size, generated once, deterministic (an AES-128-CTR
// keystream with a fixed key: incompressible, and the same size always gives
// the same bytes and sha256), cached outside the results folder and reused
// across runs. Each cached file is re-hashed when a run prepares it, so a
// damaged file is regenerated, never uploaded.
//   const f = await ensureTestFile(100 * 2 ** 20)  // { path, bytes, sha256 }
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import { cacheDir } from './paths.ts';

export interface TestFile { path: string; bytes: number; sha256: string }

const KEY = Buffer.from('upload-perf-suit', 'utf8'); // 16 bytes: AES-128
const IV = Buffer.alloc(16, 0);
const CHUNK = 1024 * 1024;
/**
 * Cipher calls of 64 KiB: 4x less CPU than 1 MiB ones (a fresh 1 MiB output
 * buffer per call costs page faults; 64 KiB ones are recycled by malloc). The
 * bytes are the same at any call size: CTR is a stream.
 */
const CIPHER_CHUNK = 64 * 1024;
/** Cipher outputs written to the file per writev. */
const WRITE_BATCH = 16;

export function testFilesDir(): string {
  return path.join(cacheDir(), 'testfiles');
}

/** Streams the deterministic bytes of a file of `bytes` length. */
export async function* keystream(bytes: number): AsyncGenerator<Buffer> {
  const cipher = crypto.createCipheriv('aes-128-ctr', KEY, IV);
  const zeros = Buffer.alloc(CIPHER_CHUNK);
  for (let left = bytes; left > 0; left -= CIPHER_CHUNK) {
    yield cipher.update(left >= CIPHER_CHUNK ? zeros : zeros.subarray(0, left));
  }
}

export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  await pipeline(fs.createReadStream(file, { highWaterMark: CHUNK }), hash);
  return hash.digest('hex');
}

/** The sha256 a file of this size must have (computed without touching the disk). */
export async function expectedSha256(bytes: number): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of keystream(bytes)) hash.update(chunk);
  return hash.digest('hex');
}

/**
 * A worker thread that sha256es the ArrayBuffers it is sent, in order, and
 * answers "end" with the hex digest: hashing costs as much CPU as generating
 * and writing together, so on a second core it runs beside them.
 */
const HASH_WORKER = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
parentPort.on('message', (m) => {
  if (m === 'end') parentPort.postMessage(hash.digest('hex'));
  else for (const b of m) hash.update(new Uint8Array(b));
});`;

async function generate(file: string, bytes: number): Promise<string> {
  const tmp = `${file}.${process.pid}.partial`;
  const hasher = new Worker(HASH_WORKER, { eval: true });
  const failed = new Promise<never>((_, reject) => hasher.once('error', reject));
  failed.catch(() => {}); // raced below; an error before then is not "unhandled"
  // A batch goes to the hasher once written: its buffers move there (transferred, not copied).
  const hashBatch = (batch: Buffer[]) => {
    // A buffer sharing its ArrayBuffer (Node's pool) is copied first: transferring would detach the pool.
    const abs = batch.map((b) => (b.byteOffset === 0 && b.buffer.byteLength === b.length ? b.buffer : new Uint8Array(b).buffer) as ArrayBuffer);
    hasher.postMessage(abs, abs);
  };
  try {
    // Each batch is written (on libuv's thread pool) while the next one is generated.
    const fh = await fs.promises.open(tmp, 'w');
    try {
      let writing: Promise<unknown> = Promise.resolve();
      let batch: Buffer[] = [];
      for await (const chunk of keystream(bytes)) {
        batch.push(chunk);
        if (batch.length < WRITE_BATCH) continue;
        await writing;
        const full = batch;
        writing = fh.writev(full).then(() => hashBatch(full));
        batch = [];
      }
      await writing;
      if (batch.length) { await fh.writev(batch); hashBatch(batch); }
    } finally {
      await fh.close();
    }
    const digest = new Promise<string>((resolve) => hasher.once('message', resolve));
    hasher.postMessage('end');
    const sha256 = await Promise.race([digest, failed]);
    fs.renameSync(tmp, file); // a half-written file is never taken for a finished one
    return sha256;
  } finally {
    await hasher.terminate();
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * Returns the cached test file for `bytes`, generating it when missing and
 * regenerating it when its size or sha256 differs from the recorded one.
 */
export async function ensureTestFile(bytes: number, dir = testFilesDir()): Promise<TestFile & { generated: boolean }> {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${bytes}.bin`);
  const sidecar = `${file}.sha256`;
  const recorded = fs.existsSync(sidecar) ? fs.readFileSync(sidecar, 'utf8').trim() : '';
  if (recorded && fs.existsSync(file) && fs.statSync(file).size === bytes && (await sha256File(file)) === recorded) {
    return { path: file, bytes, sha256: recorded, generated: false };
  }
  const sha256 = await generate(file, bytes);
  fs.writeFileSync(sidecar, `${sha256}\n`);
  return { path: file, bytes, sha256, generated: true };
}
