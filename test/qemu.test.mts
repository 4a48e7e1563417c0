// A real VM: the qemu provider boots the suite's guest image at 256 MB (building
// the image first when it is missing, about 3-12 min), runs the bundled
// stand-in inside, uploads through the forwarded port with the suite's own
// iteration (sha256 checked by reading the entry back), then makes the guest
// kernel OOM-kill a stand-in that holds the upload in memory. Skips, saying
// why, where QEMU or the image can't be had.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';
import { $ } from 'zx';
import { closeClient } from '../lib/client.ts';
import type { GuestEnvironment } from '../lib/providers/guest.ts';
import { ensureGuestImage, readGuestImage } from '../lib/providers/image.ts';
import { runIteration } from '../lib/iteration.ts';
import { QemuProvider } from '../lib/providers/qemu.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { ensureTestFile } from '../lib/testfiles.ts';
import { MiB } from '../lib/units.ts';
import { interruptWait, processesWith, qemuWhyNot, startRun, waitFor } from './run-helpers.mts';
import { needs } from './skips.mts';

const SECRET = 'qemu-test-secret-Hk4w';

test('qemu: a 256 MB VM runs the stand-in, uploads through hostfwd, samples, and OOM-kills', { timeout: 1_200_000 }, async (t) => {
  const reason = await qemuWhyNot();
  if (reason) return t.skip(needs('vm', reason));
  // The machine can build it (qemuWhyNot): a failed build is a failed test.
  const image = await ensureGuestImage({ say: (l) => t.diagnostic(l) });
  const provider = new QemuProvider(
    { server: { kind: 'standin', env: {} }, secret: SECRET, readinessTimeoutSeconds: 30 },
    { image, say: (l) => t.diagnostic(l) },
  );
  const env = await provider.up(256) as GuestEnvironment;
  try {
    t.diagnostic(`facts ${JSON.stringify(env.facts)}`);
    assert.ok(['tcg', 'kvm'].includes(env.facts.accel as string));
    assert.ok((env.facts.boot_seconds as number) > 0);

    const small = await ensureTestFile(20 * MiB);
    const ok = await runIteration({
      env, file: small, secret: SECRET, uploadTimeoutSeconds: 600, authTimeoutSeconds: 60,
      testCase: { memoryMb: 256, size: { label: '20MiB', bytes: small.bytes }, iteration: 1 },
    });
    const [upload, verification] = env.summaries;
    t.diagnostic(`20 MiB: ${JSON.stringify(ok.row)}; samples ${JSON.stringify(env.summaries)}`);
    assert.equal(ok.row.exit_reason, 'success', ok.failure ?? '');
    assert.equal(ok.row.sha256_ok, true);
    assert.ok(ok.row.peak_memory_bytes! > 30 * MiB && ok.row.peak_memory_bytes! < 256 * MiB, `guest used ${ok.row.peak_memory_bytes}`);
    assert.ok(ok.row.server_peak_rss_bytes! > 10 * MiB, `server RSS ${ok.row.server_peak_rss_bytes}`);
    assert.ok(upload.peakDiskBytes! >= 20 * MiB, `data+tmp peak ${upload.peakDiskBytes}`);
    assert.ok(upload.samples >= 2 * ok.row.duration_seconds, `${upload.samples} samples in ${ok.row.duration_seconds} s`);
    // The verification download was sampled too: the iteration's peak is the larger of the two (VmHWM only grows).
    assert.equal(env.summaries.length, 2);
    assert.ok(verification.serverPeakRssBytes! >= upload.serverPeakRssBytes!, JSON.stringify(verification));
    assert.equal(ok.row.iteration_peak_rss_bytes, verification.serverPeakRssBytes);

    // The secret reaches the server only through its environment: not on any guest command line, no file left.
    const ps = await env.ssh.run(['ps', '-eo', 'args'], { timeoutMs: 60_000 });
    assert.ok(!ps.stdout.includes(SECRET), 'secret visible in the guest ps');
    assert.ok(ps.stdout.includes('standin.mjs -db /srv/ups/run/data/store.db'));
    const left = await env.ssh.run(['ls', '/srv/ups/run'], { timeoutMs: 60_000 });
    assert.ok(!left.stdout.split('\n').includes('env'), 'env file left in the guest');

    // Held in memory, an upload larger than the guest's RAM must end in the guest kernel's OOM killer.
    const big = await ensureTestFile(300 * MiB);
    const oom = await runIteration({
      env, file: big, secret: SECRET, uploadTimeoutSeconds: 900, authTimeoutSeconds: 60,
      server: { kind: 'standin', env: { STANDIN_HOLD_IN_MEMORY: '1' } },
      testCase: { memoryMb: 256, size: { label: '300MiB', bytes: big.bytes }, iteration: 1 },
    });
    t.diagnostic(`300 MiB held in memory: ${JSON.stringify(oom.row)}`);
    t.diagnostic(oom.failure ?? '');
    assert.equal(oom.row.exit_reason, 'oom_killed');
    assert.match(oom.failure!, /Killed process \d+ \(node\)/);
    assert.equal(await env.serverAlive(), false);

    // The environment still works after the OOM kill: the next case gets a fresh server.
    assert.match(await env.startServer(), /^http:\/\/127\.0\.0\.1:\d+$/);
  } finally {
    await env.down();
    await closeClient();
  }
  const left = await $({ nothrow: true, quiet: true })`pgrep -f ${`ups-${process.pid}-256`}`;
  assert.equal(left.stdout.trim(), '', 'QEMU still running after down()');
});

// A suite interrupted mid-boot must not leave its VM behind: the run's one
// signal owner (lib/interrupts.ts) aborts, the provider kills QEMU at once and
// removes its temp folder, and close() leaves nothing.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  test(`qemu: ${sig} to the suite kills its VM`, { timeout: 1_200_000 }, async (t) => {
    const reason = await qemuWhyNot();
    if (reason) return t.skip(needs('vm', reason));
    if (!(await readGuestImage())) return t.skip(needs('vm', 'no guest image (the first test builds it)'));
    const script = `import { QemuProvider } from ${JSON.stringify(`${SUITE_DIR}/lib/providers/qemu.ts`)};
      import { Interrupts } from ${JSON.stringify(`${SUITE_DIR}/lib/interrupts.ts`)};
      const interrupts = new Interrupts(() => {}).install();
      interrupts.startRun(() => {}, () => []);
      const provider = new QemuProvider({ server: { kind: 'standin', env: {} }, secret: 's', readinessTimeoutSeconds: 30 }, { say: () => {}, signal: interrupts.signal });
      await provider.up(256).catch(() => {});
      await provider.close();
      process.exit(interrupts.exitCode() ?? 0);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: SUITE_DIR, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const vmName = `ups-${child.pid}-256`;
    const running = async () => (await $({ nothrow: true, quiet: true })`pgrep -f ${vmName}`).stdout.trim();
    const deadline = Date.now() + 60_000;
    while (!(await running()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    assert.ok(await running(), 'QEMU never started');
    child.kill(sig);
    assert.equal(await exited, sig === 'SIGINT' ? 130 : 143);
    assert.equal(await running(), '', `QEMU still running after ${sig}`);
  });
}

// Through ./run-tests, whose own handler tears down in order: the signal must
// end the boot at once, with no second boot (the provider retries a boot that
// failed on its own, never one cut short by the user), no row and no VM left.
test('qemu: SIGINT to ./run-tests while its VM boots: exit 130 within seconds, no retry, no row, no VM or work folder left', { timeout: 1_200_000 }, async (t) => {
  const reason = await qemuWhyNot();
  if (reason) return t.skip(needs('vm', reason));
  if (!(await readGuestImage())) return t.skip(needs('vm', 'no guest image (the first test builds it)'));
  const secret = `qemu-intr-${Date.now()}`;
  const run = startRun(['--provider', 'qemu', '--sizes', '1MiB', '--memory', '256', '--iterations', '1'], { PS_SHARED_SECRET: secret });
  const vmName = `ups-${run.pid}-256`;
  const vms = async () => (await $({ nothrow: true, quiet: true })`pgrep -f ${vmName}`).stdout.trim();
  // Waits for QEMU's own command line (its -serial file), not merely some process naming the VM:
  // under load the check once found the second without the first.
  const serialDir = () => /-serial\s+file:(\S+)\/serial\.log/.exec(processesWith(vmName).join('\n'))?.[1];
  await waitFor('the VM to be started', () => serialDir() !== undefined, 120_000);
  const workDir = serialDir();
  assert.ok(workDir && fs.existsSync(workDir), `the VM's work folder: ${workDir}`);
  // 2 s into the boot, which takes 10 s or more under TCG.
  await interruptWait(run, { afterMs: 2000, maxSeconds: 10, what: 'the VM boot', diagnostic: (l) => t.diagnostic(l) });
  assert.doesNotMatch(run.stderr(), /retrying/, 'an interrupted boot is not retried');
  assert.equal(await vms(), '', 'QEMU still running');
  assert.equal(fs.existsSync(workDir!), false, `${workDir} left behind`);
  fs.rmSync(run.out, { recursive: true, force: true });
});
