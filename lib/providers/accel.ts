// How a guest runs on this host, shared by the qemu and vagrant providers and
// the doctor: KVM when a short probe shows it really boots, else TCG (software
// emulation), whose slowness scales every guest timeout; and the kernel
// command line both providers boot the guest image with.
//   const accel = await chooseAccel(image)   // 'kvm' | 'tcg', probed once per process
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import type { GuestImage } from './image.ts';

/** Software emulation runs guest code several times slower than native: every guest timeout is multiplied by this. */
export const TCG_TIMEOUT_FACTOR = 4;
/** Kernel command line for direct boot of the guest image (the vagrant box boots it the same way). */
export const KERNEL_APPEND = 'root=/dev/vda rw console=ttyS0 quiet panic=-1';

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
