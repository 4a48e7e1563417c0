// Host tools the suite shells out to, and the Debian package that brings each,
// so a missing one stops the run at once with what to install instead of a
// "command not found" deep in a case.
//   const qemu = requireTool('qemu-system-x86_64')  // its path, or throws MissingTool
import fs from 'node:fs';
import path from 'node:path';
import type { ProviderName } from './matrix.ts';

/** Debian 12 packages by command. */
export const TOOL_PACKAGES: Record<string, string> = {
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  vagrant: 'vagrant',
  virsh: 'libvirt-clients',
  go: 'golang-go',
  git: 'git',
  gcc: 'gcc',
  debootstrap: 'debootstrap',
  'mkfs.ext4': 'e2fsprogs',
  ssh: 'openssh-client',
  scp: 'openssh-client',
  'ssh-keygen': 'openssh-client',
  dmesg: 'util-linux',
  mount: 'mount',
  tar: 'tar',
  ip: 'iproute2',
  xz: 'xz-utils',
};

/**
 * What each provider runs with on the host: checked before a run makes anything
 * (exit 1 naming the package), by the doctor, and by the providers themselves.
 * (The local provider's `ip`, for a server's network namespace, is optional: without it the run warns.)
 */
export const PROVIDER_TOOLS: Record<ProviderName, readonly string[]> = {
  local: [],
  qemu: ['qemu-system-x86_64', 'ssh'],
  vagrant: ['vagrant', 'virsh', 'qemu-system-x86_64', 'ssh'],
};

/** What building the guest image needs on the host (lib/providers/image.ts builds it, lib/doctor.ts checks for it). */
export const IMAGE_BUILD_TOOLS: readonly string[] = ['debootstrap', 'mkfs.ext4', 'qemu-img', 'ssh-keygen', 'xz'];

/** Said after the package where the package alone may not do. */
const HINTS: Record<string, string> = {
  go: "PicoShare 1.5 needs Go 1.26, newer than Debian 12's golang-go: https://go.dev/dl/",
};

/** Where to get a tool, e.g. "qemu-system-x86_64 not found on PATH: install the Debian package qemu-system-x86 (apt-get install qemu-system-x86)". */
export function missingToolMessage(tool: string): string {
  const pkg = TOOL_PACKAGES[tool];
  const hint = HINTS[tool] ? `; ${HINTS[tool]}` : '';
  return `${tool} not found on PATH${pkg ? `: install the Debian package ${pkg} (apt-get install ${pkg})` : ''}${hint}`;
}

/** Tools the run needs are not installed; the message names each and its package. */
export class MissingTool extends Error {
  constructor(readonly tools: string[]) {
    super(tools.map(missingToolMessage).join('; '));
    this.name = 'MissingTool';
  }
}

// sbin folders are searched too: a non-root PATH often lacks them (debootstrap, mkfs.ext4 live there).
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** The tool's path, or null when it is not an executable in PATH (or an sbin folder). A path with a slash is checked as it is. */
export function findTool(name: string, envPath = process.env.PATH ?? ''): string | null {
  const candidates = name.includes('/')
    ? [name]
    : [...envPath.split(path.delimiter).filter(Boolean), ...EXTRA_DIRS].map((d) => path.join(d, name));
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return c;
    } catch { /* not here */ }
  }
  return null;
}

/** The tool's path; throws MissingTool (naming the Debian package) when it is not installed. */
export function requireTool(name: string, envPath?: string): string {
  const found = findTool(name, envPath);
  if (!found) throw new MissingTool([name]);
  return found;
}

/** Checks every tool at once, so one attempt tells the user all there is to install. */
export function requireTools(names: readonly string[], envPath?: string): void {
  const missing = names.filter((n) => findTool(n, envPath) === null);
  if (missing.length > 0) throw new MissingTool(missing);
}
