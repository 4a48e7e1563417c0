// The noise cuts (lib/noise-cuts.ts): the names, and each technique tested
// for being APPLIED, not for its effect (its effect is the A/A table in the
// README, measured on the real server: a spread too noisy on a shared machine
// to assert on in a test). affinity: the server's threads end up on the last
// CPU and the suite on the first (/proc/PID/status); sync: the dirty pages a
// write left are written back; pretouch: the touch takes the time of touching
// the memory; warm-upload: the small upload is made, before the measured one.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { $ } from 'zx';
import { applyNoiseCuts, DEFAULT_NOISE_CUTS, NOISE_CUTS, parseNoiseCuts } from '../lib/noise-cuts.ts';
import { needs } from './skips.mts';

const hasTaskset = (await $({ nothrow: true, quiet: true })`which taskset`).exitCode === 0;
const cpus = os.availableParallelism();
const allowed = (pid: number) => /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
const dirtyKiB = () => Number(/Dirty:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1]);
const none = { serverPid: null, fileBytes: 0, warm: async () => {} };

describe('noise cuts', () => {
  test('names: a list, none, an unknown one refused naming the known', () => {
    assert.deepEqual(parseNoiseCuts('sync, pretouch,sync'), ['sync', 'pretouch']);
    assert.deepEqual(parseNoiseCuts('none'), []);
    assert.throws(() => parseNoiseCuts('sync,fast'), /unknown noise cut "fast" \(known: sync, drop-caches/);
    assert.throws(() => parseNoiseCuts(' , '), /empty list/);
    assert.ok(DEFAULT_NOISE_CUTS.every((c) => NOISE_CUTS.includes(c)));
  });

  test('affinity: the server on the last CPU, the suite on the first', { skip: !hasTaskset ? needs('cpus', 'taskset (util-linux) not installed') : cpus < 2 ? needs('cpus', 'one CPU: nothing to separate') : false }, async () => {
    const before = allowed(process.pid);
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await applyNoiseCuts(['affinity'], { ...none, serverPid: child.pid! });
      assert.equal(allowed(child.pid!), String(cpus - 1));
      assert.equal(allowed(process.pid), '0');
    } finally {
      child.kill();
      await $({ quiet: true, nothrow: true })`taskset -a -p -c ${before} ${process.pid}`;
    }
  });

  test('sync: the dirty pages of a fresh write are written back', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ups-cuts-')), 'dirty.bin');
    try {
      fs.writeFileSync(file, Buffer.alloc(64 * 2 ** 20, 1));
      const dirty = dirtyKiB();
      await applyNoiseCuts(['sync'], none);
      // Other processes keep writing on a shared machine: the 64 MiB of this write must be gone at least.
      assert.ok(dirtyKiB() < dirty || dirtyKiB() < 32 * 1024, `Dirty ${dirty} kB before, ${dirtyKiB()} kB after`);
    } finally {
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
  });

  test('pretouch and warm-upload are applied: the touch takes time, the warm callback runs first', async () => {
    const order: string[] = [];
    const spent = await applyNoiseCuts(['pretouch', 'warm-upload'], { serverPid: null, fileBytes: 256 * 2 ** 20, warm: async () => { order.push('warm'); } });
    assert.deepEqual(order, ['warm']);
    // 512 MiB read from /dev/zero into one buffer, every page touched: never instant.
    assert.ok(spent > 0.02, `${spent} s`);
    assert.equal(await applyNoiseCuts([], none), 0);
  });
});
