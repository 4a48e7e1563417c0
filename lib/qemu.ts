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
import { GUEST_SERVER_PORT, openGuest } from './guest.ts';
import { ensureGuestImage, missingTools, type GuestImage } from './image.ts';
import type { Environment, Provider, ServerLaunch } from './provider.ts';
import { freePort } from './server.ts';

/** Software emulation runs guest code several times slower than native: every guest timeout is multiplied by this. */
export const TCG_TIMEOUT_FACTOR = 4;
/** Seconds to wait for ssh after QEMU starts, before the factor (TCG boots of image 3 take 9-11 s on an idle host; image 1 took 190 s on a busy one). */
const BOOT_TIMEOUT_SECONDS = 90;
/** Kernel command line for direct boot of the guest image (the vagrant box boots it the same way). */
export const KERNEL_APPEND = 'root=/dev/vda rw console=ttyS0 quiet panic=-1';

export interface QemuOptions {
  /** vCPUs per VM; default 1 (a small machine, and two runs can share the host). */
  cpus?: number;
  /** Force an accelerator instead of probing KVM. */
  accel?: 'kvm' | 'tcg';
  /** The guest image to boot; default: ensureGuestImage() (built when missing). */
  image?: GuestImage;
  /** Guest disk size the run needs (see diskBytesFor); a smaller cached image is rebuilt. */
  diskBytes?: number;
  /** Progress lines; default stderr. */
  log?: (line: string) => void;
}

/** Every VM this process started and has not yet destroyed: QEMU's pid -> the VM's temp folder. */
const liveVms = new Map<number, string>();

/** Kills every VM still running and removes its temp files; synchronous so it works from an 'exit' handler. */
export function killAllVms(): void {
  for (const [pid, workDir] of liveVms) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  liveVms.clear();
}

let exitHooked = false;
let killedBySignal = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', killAllVms);
  // With no other handler, a signal would end the process without 'exit': kill the VMs, then end as the signal would.
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(sig, () => {
      killedBySignal = true;
      killAllVms();
      if (process.listenerCount(sig) === 1) process.exit(code);
    });
  }
}

/** The accelerator argument for QEMU: KVM only when it boots this kernel to init within a few seconds. */
let accelChoice: Promise<'kvm' | 'tcg'> | null = null;
export function chooseAccel(image: GuestImage): Promise<'kvm' | 'tcg'> {
  accelChoice ??= probeKvm(image);
  return accelChoice;
}

// /dev/kvm can be present and "enabled" yet unusable (a paravirtual KVM that
// stock kernels hang or abort under), so the probe boots the real kernel and
// waits for it to start init, which native KVM reaches in about a second.
async function probeKvm(image: GuestImage): Promise<'kvm' | 'tcg'> {
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return 'tcg';
  }
  const child = spawn('qemu-system-x86_64', [
    '-accel', 'kvm', '-cpu', 'host', '-m', '256', '-nodefaults', '-display', 'none', '-no-reboot', '-serial', 'stdio',
    '-kernel', image.kernel, '-initrd', image.initrd, '-append', 'console=ttyS0 panic=-1 root=/dev/nonexistent',
  ], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve) => {
    let out = '';
    const finish = (accel: 'kvm' | 'tcg') => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(accel);
    };
    const timer = setTimeout(() => finish('tcg'), 10_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Run /init as init process')) finish('kvm');
    });
    child.on('exit', () => finish('tcg'));
    child.on('error', () => finish('tcg'));
  });
}

export class QemuProvider implements Provider {
  readonly name = 'qemu' as const;
  private log: (line: string) => void;

  constructor(private launch: ServerLaunch, private opts: QemuOptions = {}) {
    this.log = opts.log ?? ((line) => process.stderr.write(`${line}\n`));
  }

  async up(memoryMb: number): Promise<Environment> {
    const missing = missingTools(['qemu-system-x86_64', 'ssh']);
    if (missing.length) throw new Error(`the qemu provider needs: ${missing.join(', ')}`);
    const image = this.opts.image ?? await ensureGuestImage({ log: this.log, diskBytes: this.opts.diskBytes });
    const accel = this.opts.accel ?? await chooseAccel(image);
    try {
      return await this.boot(memoryMb, image, accel);
    } catch (e) {
      // A boot cut short by Ctrl-C or SIGTERM (hookExit killed its VM) is not retried.
      if (killedBySignal) throw new Error(`qemu: boot at ${memoryMb} MB interrupted`);
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
    const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', errFd], detached: true });
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
