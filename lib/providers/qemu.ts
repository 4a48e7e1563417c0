// The qemu provider: one VM per memory limit, booted straight from the suite's
// guest image (direct kernel boot, -m = the limit, 1 vCPU by default), on a
// fresh copy-on-write disk (snapshot=on), with QEMU user networking bound to
// 127.0.0.1 forwarding free host ports to the guest's ssh and server ports.
// KVM when a short probe shows it really boots, else TCG, whose slowness
// scales every timeout (TCG_TIMEOUT_FACTOR).
//
//   const provider = new QemuProvider(launch, { cpus: 1 })
//   const env = await provider.up(256)   // boots, waits for ssh; env.facts = { accel: 'tcg', boot_seconds: 10, ... }
//   ...; await env.down()                // kills QEMU (its pid), removes its temp files
import { fs, path } from 'zx';
import os from 'node:os';
import { spawn } from 'node:child_process';
import { chooseAccel, KERNEL_APPEND, TCG_TIMEOUT_FACTOR } from './accel.ts';
import { GUEST_SERVER_PORT, openGuest } from './guest.ts';
import { ensureGuestImage, type GuestImage } from './image.ts';
import type { Environment, Provider, ProviderContext, ServerLaunch } from './provider.ts';
import { diesWithSuite } from './reaper.ts';
import { freePort } from './server.ts';
import { PROVIDER_TOOLS, requireTools } from '../tools.ts';

/** Seconds to wait for ssh after QEMU starts, before the factor (TCG boots of image 3 take 9-11 s on an idle host; image 1 took 190 s on a busy one). */
const BOOT_TIMEOUT_SECONDS = 90;

export interface QemuOptions {
  /** vCPUs per VM; default 1 (a small machine, and two runs can share the host). */
  cpus?: number;
  /** Force an accelerator instead of probing KVM. */
  accel?: 'kvm' | 'tcg';
  /** The guest image to boot; default: ensureGuestImage() (built when missing). */
  image?: GuestImage;
  /** Guest disk size the run needs (see diskBytesFor); a smaller cached image is rebuilt. */
  diskBytes?: number;
}

/** Every VM this process started and has not yet destroyed: QEMU's pid -> the VM's temp folder. */
const liveVms = new Map<number, string>();

/** Kills every VM still running and removes its temp files; synchronous so it works from an 'exit' handler. */
function killAllVms(): void {
  for (const [pid, workDir] of liveVms) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  liveVms.clear();
}

// Last resort when the process ends without the run's teardown (an uncaught
// error): its VMs, in process groups of their own, would outlive it.
let exitHooked = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', killAllVms);
}

export class QemuProvider implements Provider {
  readonly name = 'qemu' as const;
  private log: (line: string) => void;

  constructor(private launch: ServerLaunch, private opts: QemuOptions & ProviderContext) {
    this.log = opts.say;
    // An interrupted run kills its VMs at once: a boot under way then fails, and is not retried.
    opts.signal?.addEventListener('abort', killAllVms, { once: true });
  }

  waitingFor(): string[] {
    return [...liveVms.keys()].map((pid) => `qemu pid ${pid}`);
  }

  async close(): Promise<void> {
    killAllVms();
  }

  async up(memoryMb: number): Promise<Environment> {
    requireTools(PROVIDER_TOOLS.qemu);
    const image = this.opts.image ?? await ensureGuestImage({ say: this.log, diskBytes: this.opts.diskBytes });
    const accel = this.opts.accel ?? await chooseAccel(image);
    try {
      return await this.boot(memoryMb, image, accel);
    } catch (e) {
      // A boot cut short by Ctrl-C or SIGTERM (the abort killed its VM) is not retried.
      if (this.opts.signal?.aborted) throw new Error(`qemu: boot at ${memoryMb} MB interrupted`);
      this.log(`qemu: boot at ${memoryMb} MB failed, retrying once: ${(e as Error).message}`);
      return await this.boot(memoryMb, image, accel);
    }
  }

  private async boot(memoryMb: number, image: GuestImage, accel: 'kvm' | 'tcg'): Promise<Environment> {
    const cpus = this.opts.cpus ?? 1;
    const factor = accel === 'tcg' ? TCG_TIMEOUT_FACTOR : 1;
    const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ups-qemu-'));
    const errFile = path.join(workDir, 'qemu.stderr');
    const serial = path.join(workDir, 'serial.log');
    const sshPort = await freePort();
    const httpPort = await freePort();
    const accelArgs = accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,tb-size=128', '-cpu', 'max'];
    const started = Date.now();
    hookExit();
    const args = [
      ...accelArgs, '-smp', String(cpus), '-m', String(memoryMb),
      '-name', `ups-${process.pid}-${memoryMb}`, '-nodefaults', '-display', 'none', '-no-reboot',
      '-serial', `file:${serial}`,
      '-kernel', image.kernel, '-initrd', image.initrd, '-append', KERNEL_APPEND,
      '-drive', `file=${image.disk},if=virtio,format=qcow2,snapshot=on`,
      '-netdev', `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${sshPort}-:22,hostfwd=tcp:127.0.0.1:${httpPort}-:${GUEST_SERVER_PORT}`,
      '-device', 'virtio-net-pci,netdev=n0',
    ];
    // A child of ours (not -daemonize): its pid is known the moment it exists, so a signal
    // arriving at any point after this finds it in liveVms. Its own process group keeps a
    // terminal's Ctrl-C for the suite, which tears down in order.
    const errFd = fs.openSync(errFile, 'w');
    // Through setpriv (lib/providers/reaper.ts): QEMU dies with the suite, even when the suite is killed with SIGKILL.
    const [cmd, ...argv] = diesWithSuite(['qemu-system-x86_64', ...args]);
    const qemu = spawn(cmd, argv, { stdio: ['ignore', 'ignore', errFd], detached: true });
    fs.closeSync(errFd);
    const pid = qemu.pid;
    if (!pid) {
      await fs.remove(workDir);
      throw new Error('qemu-system-x86_64 could not be started');
    }
    liveVms.set(pid, workDir);
    qemu.on('error', () => { /* reported through its exit */ });
    let destroyed = false;
    const destroy = async () => {
      if (destroyed) return;
      destroyed = true;
      try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
      for (let i = 0; i < 50 && qemu.exitCode === null && qemu.signalCode === null; i++) await new Promise((r) => setTimeout(r, 100));
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      liveVms.delete(pid);
      await fs.remove(workDir);
    };
    try {
      const facts: Record<string, unknown> = { accel, cpus, timeout_factor: factor, image_built_at: image.manifest.built_at, kernel: image.manifest.kernel_version };
      const env = await openGuest({
        memoryMb, facts, ssh: { port: sshPort, keyFile: image.sshKey }, httpPort,
        launch: this.launch, timeoutFactor: factor, workDir, destroy,
      }, async () => qemu.exitCode === null && qemu.signalCode === null, BOOT_TIMEOUT_SECONDS * 1000 * factor);
      facts.boot_seconds = Math.round((Date.now() - started) / 100) / 10;
      this.log(`qemu: ${memoryMb} MB VM up in ${facts.boot_seconds} s (${accel}, ${cpus} vCPU, ssh 127.0.0.1:${sshPort}, server 127.0.0.1:${httpPort})`);
      return env;
    } catch (e) {
      const tail = (await fs.readFile(serial, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
      const qemuErr = (await fs.readFile(errFile, 'utf8').catch(() => '')).trim();
      await destroy();
      throw new Error(`${(e as Error).message}${qemuErr ? `\nqemu: ${qemuErr}` : ''}\nlast serial console lines:\n${tail}`);
    }
  }
}
