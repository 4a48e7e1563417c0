// lib/providers/cgroup.ts on a real cgroup v2, the hierarchy most hosts mount today:
// this machine mounts v1 for memory, so the probe (test/fixtures/cgroup-probe.mts,
// bundled for the guest's Node 18) runs inside the suite's guest image, whose
// systemd mounts v2. It makes a 96 MiB cgroup and runs real processes in it:
// the peak, its reset, usage that outlives a process, an OOM kill, and removal.
// Twice: on the image's kernel (6.1: no reset, so the local provider polls) and
// on bookworm-backports' 6.12 (the reset through a kept descriptor). Skips,
// saying why, where QEMU, the image or that kernel can't be had.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { build } from 'esbuild';
import type { GuestEnvironment } from '../lib/providers/guest.ts';
import { ensureGuestImage, type GuestImage } from '../lib/providers/image.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { QemuProvider } from '../lib/providers/qemu.ts';
import { MiB } from '../lib/units.ts';
import { backportsKernel } from './fixtures/backports-kernel.mts';
import { qemuWhyNot } from './run-helpers.mts';
import { needs } from './skips.mts';

/** Whether the kernel release (`6.1.0-28-amd64`) is at least major.minor. */
function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const [a, b] = release.split(/[.-]/).map(Number);
  return a > major || (a === major && b >= minor);
}

/** Boots the image (with another kernel when given) at 512 MB and runs the bundled probe in it; returns what it saw. */
async function probeInGuest(t: TestContext, image: GuestImage): Promise<Record<string, any>> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cgroup-v2-'));
  const bundle = path.join(tmp, 'cgroup-probe.mjs');
  await build({
    entryPoints: [path.join(SUITE_DIR, 'test/fixtures/cgroup-probe.mts')],
    outfile: bundle, bundle: true, platform: 'node', target: 'node18', format: 'esm', logLevel: 'silent',
  });
  const provider = new QemuProvider(
    { server: { kind: 'standin', env: {} }, secret: 'cgroup-v2-test', readinessTimeoutSeconds: 30 },
    { image, say: (l) => t.diagnostic(l) },
  );
  const env = await provider.up(512) as GuestEnvironment;
  try {
    await env.ssh.copy(bundle, '/root/cgroup-probe.mjs', 60_000);
    const r = await env.ssh.run(['node', '/root/cgroup-probe.mjs'], { timeoutMs: 300_000 });
    t.diagnostic(r.stdout.trim());
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  } finally {
    await env.down();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function assertProbe(seen: Record<string, any>): void {
  assert.equal(seen.error, undefined, `no cgroup in the guest: ${seen.error}`);
  assert.equal(seen.version, 2);
  assert.match(seen.dir, /^\/sys\/fs\/cgroup\/upload-perf-suite-\d+-probe$/);
  assert.equal(seen.limitBytes, 96 * MiB);
  assert.deepEqual(seen.hog48, { status: 0, signal: null });
  assert.ok(seen.peakAfter48 >= 48 * MiB && seen.peakAfter48 < 96 * MiB, `peak after a 48 MiB process: ${seen.peakAfter48}`);
  if (kernelAtLeast(seen.kernel, 6, 12)) {
    // The reset works only through the descriptor that wrote it: read through another, the peak would stay at 48.
    assert.equal(seen.resetAtStart, true);
    assert.equal(seen.resetAfter48, true);
    assert.ok(seen.peakAfter16 >= 16 * MiB && seen.peakAfter16 < 40 * MiB, `peak after a reset and a 16 MiB process: ${seen.peakAfter16}`);
  } else {
    // No reset: the kernel keeps the peak since creation, which is why the local provider polls memory.current here.
    assert.equal(seen.resetAtStart, false, `Linux ${seen.kernel} should refuse the reset`);
    assert.ok(seen.peakAfter16 >= 48 * MiB, `the peak since creation stays: ${seen.peakAfter16}`);
  }
  assert.deepEqual(seen.shm, { status: 0, signal: null });
  assert.ok(seen.currentWithShm40 >= 40 * MiB, `usage with 40 MiB of tmpfs charged: ${seen.currentWithShm40}`);
  assert.ok(seen.currentAfterRm < 8 * MiB, `usage once it is removed: ${seen.currentAfterRm}`);
  assert.deepEqual(seen.hog200, { status: null, signal: 'SIGKILL' }, 'a 200 MiB process in a 96 MiB cgroup is OOM-killed');
  assert.ok(seen.oomKillsAfter - seen.oomKillsBefore >= 1, `oom_kill in memory.events: ${seen.oomKillsBefore} -> ${seen.oomKillsAfter}`);
  assert.equal(seen.pidsLeft, 0);
  assert.equal(seen.dirLeft, false, 'the cgroup was not removed');
}

test('cgroup v2 in a VM guest (the image\'s Linux 6.1): limit, peak, a refused reset, usage, OOM kill, removal', { timeout: 1_200_000 }, async (t) => {
  const reason = await qemuWhyNot();
  if (reason) return t.skip(needs('vm', reason));
  const image = await ensureGuestImage({ say: (l) => t.diagnostic(l) });
  const seen = await probeInGuest(t, image);
  assert.ok(!kernelAtLeast(seen.kernel, 6, 12), `the image's kernel is ${seen.kernel}: this test is for one before 6.12`);
  assertProbe(seen);
});

test('cgroup v2 in a VM guest on Linux 6.12+ (bookworm-backports): the peak resets through the kept descriptor', { timeout: 1_200_000 }, async (t) => {
  const reason = await qemuWhyNot();
  if (reason) return t.skip(needs('vm', reason));
  const image = await ensureGuestImage({ say: (l) => t.diagnostic(l) });
  const k = await backportsKernel(image);
  if (typeof k === 'string') return t.skip(needs('vm', `no Linux 6.12 kernel for the guest: ${k}`));
  const seen = await probeInGuest(t, { ...image, kernel: k.kernel, initrd: k.initrd });
  assert.equal(seen.kernel, k.release);
  assert.ok(kernelAtLeast(seen.kernel, 6, 12), seen.kernel);
  assertProbe(seen);
});
