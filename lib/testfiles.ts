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
import { cacheDir } from './paths.ts';

export interface TestFile { path: string; bytes: number; sha256: string }

const KEY = Buffer.from('upload-perf-suit', 'utf8'); // 16 bytes: AES-128
const IV = Buffer.alloc(16, 0);
const CHUNK = 1024 * 1024;

export function testFilesDir(): string {
  return path.join(cacheDir(), 'testfiles');
}

/** Streams the deterministic bytes of a file of `bytes` length. */
export async function* keystream(bytes: number): AsyncGenerator<Buffer> {
  const cipher = crypto.createCipheriv('aes-128-ctr', KEY, IV);
  const zeros = Buffer.alloc(CHUNK);
  for (let left = bytes; left > 0; left -= CHUNK) {
    yield cipher.update(left >= CHUNK ? zeros : zeros.subarray(0, left));
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

async function generate(file: string, bytes: number): Promise<string> {
  const hash = crypto.createHash('sha256');
  const tmp = `${file}.${process.pid}.partial`;
  try {
    await pipeline(async function* () {
      for await (const chunk of keystream(bytes)) { hash.update(chunk); yield chunk; }
    }, fs.createWriteStream(tmp, { highWaterMark: CHUNK }));
    fs.renameSync(tmp, file); // a half-written file is never taken for a finished one
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return hash.digest('hex');
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
