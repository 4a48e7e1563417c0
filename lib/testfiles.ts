// Test files: one per size, generated once, deterministic (splitmix64 from a
// fixed seed: incompressible, and the same size always gives the same bytes and
// sha256; a smaller file is a prefix of a larger one), cached outside the
// results folder and reused across runs. Each file's sha256 is taken from the
// file as written, and a cached file is re-hashed when a run prepares it, so a
// damaged file is regenerated, never uploaded.
//   const f = await ensureTestFile(100 * 2 ** 20)  // { path, bytes, sha256 }
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cacheDir } from './paths.ts';
import { makeDirs } from './dirs.ts';

export interface TestFile { path: string; bytes: number; sha256: string }

// Bytes per write: 1 MiB measured 0.23-0.28 s per GiB; 256 KiB 0.38-0.44 s (more
// calls); 4 MiB 1.4-1.7 s, all in the kernel (large page-cache folios come from
// the high-order free blocks this VM's balloon has handed back to the host).
const BLOCK_BYTES = 1024 * 1024;
// Bytes per read when hashing a file.
const READ_BYTES = 1024 * 1024;

/** Named after the generator, so files made by an earlier one are never taken for its own. */
export function testFilesDir(): string {
  return path.join(cacheDir(), 'testfiles', 'splitmix64');
}

/** Makes the test files' folder (or says why it cannot be made: exit 2); returns it. */
export function makeTestFilesDir(dir = testFilesDir()): string {
  makeDirs(dir, 'the test files\' cache folder');
  return dir;
}

// The generator: splitmix64 (Steele, Lea & Flood 2014; the seeder of Java's
// SplittableRandom and of xoshiro), as a 150-byte WebAssembly module written
// out by hand below, filling a reused block of its memory. Why by hand: Node's
// ciphers return a new buffer per call, and at 1 GiB of garbage per GiB the GC
// and the page faults of re-grown heap cost 0.6-1.3 s per GiB in the suite's
// own process (measured with AES-128-CTR, 64 KiB per call); plain JS has no
// fast 64-bit multiply (a 32-bit murmur3 finaliser measured 0.27 s per GiB).
// WebAssembly's i64 does it in 0.12 s per GiB, with no allocation at all.
// test/testfiles.test.mts checks this module against splitmix64 in BigInt.
// @types/node 20 leaves WebAssembly to TypeScript's DOM lib; the two constructors used here:
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
};
const GAMMA = 0x9e3779b97f4a7c15n;
const MIX1 = 0xbf58476d1ce4e5b9n;
const MIX2 = 0x94d049bb133111ebn;

function uleb128(n: number): number[] {
  const out: number[] = [];
  do {
    const low = n & 0x7f;
    n >>>= 7;
    out.push(n ? low | 0x80 : low);
  } while (n);
  return out;
}

function sleb128(v: bigint): number[] {
  const out: number[] = [];
  for (v = BigInt.asIntN(64, v); ;) {
    const low = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && !(low & 0x40)) || (v === -1n && low & 0x40)) return [...out, low];
    out.push(low | 0x80);
  }
}

/**
 * fill(state, ptr, len) -> state: writes len / 8 splitmix64 outputs
 * (little-endian u64) at ptr, len a positive multiple of 8. In text form:
 *   (func (param $state i64) (param $ptr i32) (param $len i32) (result i64)
 *     (local $end i32) (local $z i64)
 *     (local.set $end (i32.add (local.get $ptr) (local.get $len)))
 *     (loop $next
 *       (local.set $state (i64.add (local.get $state) (i64.const GAMMA)))
 *       (local.set $z (i64.mul (i64.xor (local.get $state) (i64.shr_u (local.get $state) (i64.const 30))) (i64.const MIX1)))
 *       (local.set $z (i64.mul (i64.xor (local.get $z) (i64.shr_u (local.get $z) (i64.const 27))) (i64.const MIX2)))
 *       (i64.store (local.get $ptr) (i64.xor (local.get $z) (i64.shr_u (local.get $z) (i64.const 31))))
 *       (local.set $ptr (i32.add (local.get $ptr) (i32.const 8)))
 *       (br_if $next (i32.lt_u (local.get $ptr) (local.get $end))))
 *     (local.get $state))
 */
function splitmix64Module(memoryPages: number): Uint8Array {
  const [I32, I64] = [0x7f, 0x7e];
  const [GET, SET, TEE] = [0x20, 0x21, 0x22];
  const [STATE, PTR, LEN, END, Z] = [0, 1, 2, 3, 4];
  const i64 = (v: bigint) => [0x42, ...sleb128(v)];
  const [ADD64, MUL64, XOR64, SHR64] = [0x7c, 0x7e, 0x85, 0x88];
  const xorShift = (k: bigint) => [TEE, Z, GET, Z, ...i64(k), SHR64, XOR64]; // z ^ (z >>> k), z on the stack
  const body = [
    2, 1, I32, 1, I64, // locals: $end, $z
    GET, PTR, GET, LEN, 0x6a, SET, END,
    0x03, 0x40, // loop
    GET, PTR,
    GET, STATE, ...i64(GAMMA), ADD64, TEE, STATE,
    ...xorShift(30n), ...i64(MIX1), MUL64,
    ...xorShift(27n), ...i64(MIX2), MUL64,
    ...xorShift(31n),
    0x37, 3, 0, // i64.store, 8-byte aligned, offset 0
    GET, PTR, 0x41, 8, 0x6a, TEE, PTR, GET, END, 0x49, 0x0d, 0, // ptr += 8; br_if (ptr < end)
    0x0b, // end loop
    GET, STATE,
    0x0b,
  ];
  const section = (id: number, content: number[]) => [id, ...uleb128(content.length), ...content];
  const name = (s: string) => [...uleb128(s.length), ...Buffer.from(s)];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, // "\0asm", version 1
    ...section(1, [1, 0x60, 3, I64, I32, I32, 1, I64]), // type: (i64, i32, i32) -> i64
    ...section(3, [1, 0]), // one function, of that type
    ...section(5, [1, 0, ...uleb128(memoryPages)]), // one memory, no maximum
    ...section(7, [2, ...name('memory'), 2, 0, ...name('fill'), 0, 0]),
    ...section(10, [1, ...uleb128(body.length), ...body]),
  ]);
}

/** A splitmix64 stream from seed 0, handed out in reused blocks of `blockBytes` (a multiple of 8). */
export class Splitmix64 {
  private state = 0n;
  private readonly fill: (state: bigint, ptr: number, len: number) => bigint;
  /** Two blocks, so one can be filled while the other is still being written. */
  readonly blocks: [Buffer, Buffer];

  constructor(readonly blockBytes: number) {
    const pages = Math.ceil((2 * blockBytes) / 65536);
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(splitmix64Module(pages)));
    this.fill = exports.fill as Splitmix64['fill'];
    const { buffer } = exports.memory as { buffer: ArrayBuffer };
    this.blocks = [Buffer.from(buffer, 0, blockBytes), Buffer.from(buffer, blockBytes, blockBytes)];
  }

  /** Fills block `i` (0 or 1) with the next blockBytes of the stream and returns it. */
  next(i: 0 | 1): Buffer {
    this.state = this.fill(this.state, i * this.blockBytes, this.blockBytes);
    return this.blocks[i];
  }
}

/**
 * By hand, not a read stream: a stream allocates a new buffer per read, and
 * fresh large buffers are fresh mmaps whose page faults cost more than the
 * hash (measured 1.6-2.0 s per GiB from the page cache). Two reused buffers
 * instead, the next read running in libuv's pool while this thread hashes.
 */
export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  const fh = await fs.promises.open(file, 'r');
  try {
    const buffers = [Buffer.allocUnsafe(READ_BYTES), Buffer.allocUnsafe(READ_BYTES)];
    let reading = fh.read(buffers[0], 0, READ_BYTES, null);
    for (let i = 1; ; i++) {
      const { bytesRead, buffer } = await reading;
      if (bytesRead === 0) break;
      reading = fh.read(buffers[i % 2], 0, READ_BYTES, null);
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

/**
 * Writes the first `bytes` of the stream to `file` (through a temporary name,
 * so a half-written file is never taken for a finished one). One block is
 * filled on this thread while libuv's pool writes the other, so the generator
 * and the page-cache writes overlap. No hash here: it would hold the loop to
 * SHA-256's 0.64 s per GiB, sequential by nature.
 */
export async function writeTestFile(file: string, bytes: number): Promise<void> {
  const tmp = `${file}.${process.pid}.partial`;
  const fh = await fs.promises.open(tmp, 'w');
  try {
    const stream = new Splitmix64(BLOCK_BYTES);
    let writing: Promise<unknown> = Promise.resolve();
    for (let pos = 0, i: 0 | 1 = 0; pos < bytes; pos += BLOCK_BYTES, i = i ? 0 : 1) {
      const block = stream.next(i); // the other block's write may still be running; this one's is done
      await writing;
      writing = writeAll(fh, block.subarray(0, Math.min(BLOCK_BYTES, bytes - pos)), pos);
    }
    await writing;
    await fh.close();
    fs.renameSync(tmp, file);
  } finally {
    await fh.close().catch(() => {}); // already closed on success
    fs.rmSync(tmp, { force: true });
  }
}

/** write may write less than asked (a full disk, a signal): go on from where it stopped. */
async function writeAll(fh: fs.promises.FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length;) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Returns the cached test file for `bytes`, generating it when missing and
 * regenerating it when its size or sha256 differs from the recorded one.
 */
export async function ensureTestFile(bytes: number, dir = testFilesDir()): Promise<TestFile & { generated: boolean }> {
  makeTestFilesDir(dir);
  const file = path.join(dir, `${bytes}.bin`);
  const sidecar = `${file}.sha256`;
  const recorded = fs.existsSync(sidecar) ? fs.readFileSync(sidecar, 'utf8').trim() : '';
  if (recorded && fs.existsSync(file) && fs.statSync(file).size === bytes && (await sha256File(file)) === recorded) {
    return { path: file, bytes, sha256: recorded, generated: false };
  }
  await writeTestFile(file, bytes);
  const sha256 = await sha256File(file); // of the bytes on disk, as the cached check will see them
  fs.writeFileSync(sidecar, `${sha256}\n`);
  return { path: file, bytes, sha256, generated: true };
}
