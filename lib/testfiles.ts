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
// cipher.update allocates its output: 64 KiB outputs come from malloc's reused
// arena, while 1 MiB ones are fresh mmaps whose page faults cost 5x the AES
// itself (measured: 0.35 s/GiB at 64 KiB, 1.9 s/GiB at 1 MiB).
const PIECE = 64 * 1024;
// Bytes per write (and per read when hashing a cached file).
const CHUNK = 4 * 1024 * 1024;

export function testFilesDir(): string {
  return path.join(cacheDir(), 'testfiles');
}

/** Streams the deterministic bytes of a file of `bytes` length, in pieces of 64 KiB. */
export function* keystream(bytes: number): Generator<Buffer> {
  const cipher = crypto.createCipheriv('aes-128-ctr', KEY, IV);
  const zeros = Buffer.alloc(PIECE);
  for (let left = bytes; left > 0; left -= PIECE) {
    yield cipher.update(left >= PIECE ? zeros : zeros.subarray(0, left));
  }
}

export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  await pipeline(fs.createReadStream(file, { highWaterMark: CHUNK }), hash);
  return hash.digest('hex');
}

/**
 * Writes the keystream to `file` and returns its sha256. The keystream and the
 * hash are computed on this thread while the previous 4 MiB block is being
 * written by libuv's pool, so the disk and the CPU work overlap. By hand, not
 * pipeline() into a 4 MiB write stream: that measured 2.2-3.4 s per GiB here
 * against 1.3-2.3 s for this loop (more CPU in the stream machinery).
 */
async function generate(file: string, bytes: number): Promise<string> {
  const hash = crypto.createHash('sha256');
  const tmp = `${file}.${process.pid}.partial`;
  const fh = await fs.promises.open(tmp, 'w');
  try {
    let writing: Promise<unknown> = Promise.resolve();
    let block: Buffer[] = [];
    let blockBytes = 0;
    for (const piece of keystream(bytes)) {
      hash.update(piece);
      block.push(piece);
      blockBytes += piece.length;
      if (blockBytes >= CHUNK) {
        await writing;
        writing = writeAll(fh, block);
        block = [];
        blockBytes = 0;
      }
    }
    await writing;
    await writeAll(fh, block);
    await fh.close();
    fs.renameSync(tmp, file); // a half-written file is never taken for a finished one
  } finally {
    await fh.close().catch(() => {}); // already closed on success
    fs.rmSync(tmp, { force: true });
  }
  return hash.digest('hex');
}

/** writev may write less than asked (a full disk, a signal): go on from where it stopped. */
async function writeAll(fh: fs.promises.FileHandle, pieces: Buffer[]): Promise<void> {
  let rest = pieces;
  while (rest.length) {
    let { bytesWritten } = await fh.writev(rest);
    const left: Buffer[] = [];
    for (const p of rest) {
      if (bytesWritten >= p.length) bytesWritten -= p.length;
      else { left.push(p.subarray(bytesWritten)); bytesWritten = 0; }
    }
    rest = left;
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
