// Test files: the generator's bytes, their sha256 (checked by coreutils'
// sha256sum, not by the code under test) and the cache's self-repair.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { $ } from 'zx';
import { ensureTestFile, Splitmix64 } from '../lib/testfiles.ts';

const MiB = 2 ** 20;

test('generated files: exact size, sha256 as sha256sum sees it, deterministic, incompressible', { timeout: 300_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-testfiles-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const odd = 9 * MiB + 12345; // not a multiple of the 1 MiB block, nor of splitmix64's 8 bytes
  const f = await ensureTestFile(odd, dir);
  assert.equal(f.generated, true);
  assert.equal(fs.statSync(f.path).size, odd);
  const sum = (await $({ quiet: true })`sha256sum ${f.path}`).stdout.split(' ')[0];
  assert.equal(f.sha256, sum);
  assert.equal(fs.readFileSync(`${f.path}.sha256`, 'utf8').trim(), sum);
  // Same keystream for every size: a smaller file is a prefix of a larger one.
  const small = await ensureTestFile(MiB, dir);
  assert.deepEqual(fs.readFileSync(small.path), fs.readFileSync(f.path).subarray(0, MiB));
  const gz = (await $({ quiet: true })`gzip -c ${small.path} | wc -c`).stdout.trim();
  assert.ok(Number(gz) > MiB, `gzip shrank 1 MiB of test data to ${gz} bytes`);
  // No partial files left behind.
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('partial')), []);
});

test('the WebAssembly generator is splitmix64 (checked against the algorithm in BigInt)', { timeout: 300_000 }, () => {
  const splitmix64 = function* () {
    for (let state = 0n; ;) {
      state = BigInt.asUintN(64, state + 0x9e3779b97f4a7c15n);
      let z = state;
      z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
      z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
      yield z ^ (z >> 31n);
    }
  };
  const stream = new Splitmix64(4096);
  const reference = splitmix64();
  // Three blocks, alternating the two buffers: the state carries across calls.
  for (const i of [0, 1, 0] as const) {
    const block = stream.next(i);
    for (let off = 0; off < block.length; off += 8) assert.equal(block.readBigUInt64LE(off), reference.next().value, `block ${i}, byte ${off}`);
  }
  assert.equal(new Splitmix64(8).next(0).readBigUInt64LE(0), 0xe220a8397b1dcdafn); // the published first output for seed 0
});

test('a cached file is reused when intact and regenerated when damaged', { timeout: 300_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-testfiles-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const first = await ensureTestFile(2 * MiB, dir);
  const again = await ensureTestFile(2 * MiB, dir);
  assert.equal(again.generated, false);
  assert.equal(again.sha256, first.sha256);
  const fd = fs.openSync(first.path, 'r+');
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, MiB);
  fs.writeSync(fd, Buffer.from([~byte[0] & 0xff]), 0, 1, MiB); // one byte in the middle, flipped
  fs.closeSync(fd);
  const repaired = await ensureTestFile(2 * MiB, dir);
  assert.equal(repaired.generated, true);
  assert.equal(repaired.sha256, first.sha256);
  assert.equal((await $({ quiet: true })`sha256sum ${first.path}`).stdout.split(' ')[0], first.sha256);
});
