// The disk-space estimate on literal data: what a run needs where, summed per
// filesystem, and the message when one is short.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diskNeeds, HEADROOM_BYTES, shortfalls, type DiskPlan } from '../lib/diskspace.ts';
import { MiB } from '../lib/units.ts';

const PLAN: DiskPlan = {
  sizes: [100 * MiB, 1024 * MiB], cachedSizes: [100 * MiB], testFilesDir: '/cache/testfiles',
  dataDir: '/tmp', guestImageBytes: 0, imageDir: '/cache/image',
};

test('diskNeeds: uncached test files, 2x the largest file for the server, a guest image still to build', { timeout: 120_000 }, () => {
  assert.deepEqual(diskNeeds(PLAN), [
    { dir: '/cache/testfiles', bytes: 1024 * MiB, what: 'test files not yet cached (1 GiB)' },
    { dir: '/tmp', bytes: 2048 * MiB + HEADROOM_BYTES, what: "the server's data: 2 x the largest file (1 GiB) + 16 MiB" },
  ]);
  const cachedVm = diskNeeds({ ...PLAN, cachedSizes: PLAN.sizes, guestImageBytes: 1024 * MiB });
  assert.deepEqual(cachedVm.map((n) => n.dir), ['/tmp', '/cache/image']);
});

test('shortfalls: needs on one filesystem add up; each short filesystem is named with the figures', { timeout: 120_000 }, () => {
  const needs = diskNeeds(PLAN);
  const on = (dev: number, free: number) => needs.map((n) => ({ ...n, dev, freeBytes: free, measured: n.dir }));
  assert.deepEqual(shortfalls(on(1, 4096 * MiB)), [], 'fits');
  const short = shortfalls(on(1, 3000 * MiB));
  assert.equal(short.length, 1, 'one filesystem, one message');
  assert.match(short[0], /^\/cache\/testfiles and \/tmp: 2\.93 GiB free, the run needs about 3\.02 GiB there \(test files not yet cached \(1 GiB\): 1 GiB; the server's data/);
  const split = needs.map((n, i) => ({ ...n, dev: i, freeBytes: 1500 * MiB, measured: n.dir }));
  assert.deepEqual(shortfalls(split).map((m) => m.split(':')[0]), ['/tmp'], 'separate filesystems are judged apart');
});
