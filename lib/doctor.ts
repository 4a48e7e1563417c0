// `./run-tests --doctor`, the pure half: which checks matter for a provider,
// and what the probed facts (lib/doctor-probe.ts) mean: one ok/FAIL/warn line
// per check with its fix, and whether the provider can run. No I/O here, so
// every verdict is tested on literal facts.
//   const checks = diagnose(facts); process.stdout.write(renderChecks(checks)); exit canRun(checks) ? 0 : 1
import type { ProviderName } from './matrix.ts';
import { formatBytes } from './units.ts';
import { IMAGE_BUILD_TOOLS, PROVIDER_TOOLS, TOOL_PACKAGES } from './tools.ts';

export type Status = 'ok' | 'FAIL' | 'warn';
export interface Check { status: Status; name: string; finding: string; fix?: string }

/** A probe that ran a command: whether it worked, and what it said (or why it did not). */
export interface Probed { ok: boolean; detail: string }

/** The probes a provider needs; the prober runs only these (vagrant and KVM probes take seconds). */
export type Probe = 'cgroup' | 'kvm' | 'libvirt' | 'plugin' | 'network' | 'group' | 'image' | 'box';

export interface Facts {
  provider: ProviderName;
  root: boolean;
  /** server: source in the matrix: go builds it on the host. */
  serverFromSource: boolean;
  /** Every tool of toolsFor(provider): its path, or null when missing. */
  tools: Record<string, string | null>;
  /** Disk-space shortfalls (lib/diskspace.ts), empty when the run fits; summary says what fits where. */
  disk: { shortfalls: string[]; summary: string };
  cgroup?: Probed;
  /** The KVM probe's answer, or why it could not run. */
  kvm?: { accel: 'kvm' | 'tcg'; devKvm: 'usable' | 'no access' | 'missing' } | { notProbed: string };
  /** Session libvirtd as the user the vagrant provider runs as (a string: why it was not probed); system libvirtd (qemu:///system). */
  libvirt?: { session: Probed | string; system: Probed };
  plugin?: Probed;
  /** The system default network: null when `virsh net-list` could not run (detail says why). */
  network?: { state: 'active' | 'inactive' | 'undefined' | null; leases: number | null; detail: string };
  /** null: root (the group does not matter). */
  libvirtGroup?: { user: string; member: boolean } | null;
  image?: { dir: string; virtualBytes: number | null; needBytes: number; builtAt: string | null };
  /** Versions of the suite's box that vagrant has, the version the current image makes, UPS_VM_BOX and whether vagrant has it. */
  box?: { name: string; versions: string[]; wanted: string | null; configured: string | null; configuredPresent: boolean } | { error: string };
}

/** Tools the doctor looks up for a provider: what it runs with, what builds the image, and go. */
export function toolsFor(provider: ProviderName): string[] {
  return [...new Set([...PROVIDER_TOOLS[provider], ...(provider === 'local' ? [] : IMAGE_BUILD_TOOLS), 'go'])];
}

/** Probes that matter for a provider: local needs a memory cgroup and none of the VM machinery. */
export function probesFor(provider: ProviderName): Probe[] {
  if (provider === 'local') return ['cgroup'];
  if (provider === 'qemu') return ['kvm', 'image'];
  return ['plugin', 'kvm', 'libvirt', 'network', 'group', 'image', 'box'];
}

const install = (tool: string) => `apt-get install ${TOOL_PACKAGES[tool] ?? tool}`;

/** Whether the guest image is there and large enough, or can be built by the run (root and the build tools). */
function imageState(f: Facts): 'ok' | 'buildable' | 'unbuildable' {
  const img = f.image;
  if (img && img.virtualBytes !== null && img.virtualBytes >= img.needBytes) return 'ok';
  return f.root && IMAGE_BUILD_TOOLS.every((t) => f.tools[t]) ? 'buildable' : 'unbuildable';
}

/** Every check's line for the facts; the verdict is canRun(). Pure. */
export function diagnose(f: Facts): Check[] {
  const checks: Check[] = [];
  const vm = f.provider !== 'local';
  const imgState = vm ? imageState(f) : 'ok';
  for (const tool of toolsFor(f.provider)) {
    const at = f.tools[tool];
    if (at) { checks.push({ status: 'ok', name: tool, finding: at }); continue; }
    const needed = PROVIDER_TOOLS[f.provider].includes(tool) || (tool === 'go' && f.serverFromSource)
      || (IMAGE_BUILD_TOOLS.includes(tool) && imgState !== 'ok');
    const why = tool === 'go' ? 'needed only to build a server from source'
      : IMAGE_BUILD_TOOLS.includes(tool) ? 'needed only to build the guest image, which is there' : '';
    checks.push({
      status: needed ? 'FAIL' : 'warn', name: tool,
      finding: needed ? 'not found on PATH' : `not found on PATH (${why})`,
      fix: install(tool) + (tool === 'go' ? " (PicoShare needs Go 1.26, newer than Debian 12's: https://go.dev/dl/)" : ''),
    });
  }
  if (f.plugin) {
    checks.push(f.plugin.ok
      ? { status: 'ok', name: 'vagrant-libvirt plugin', finding: f.plugin.detail }
      : { status: 'FAIL', name: 'vagrant-libvirt plugin', finding: f.plugin.detail, fix: 'apt-get install vagrant-libvirt' });
  }
  if (f.kvm) checks.push(kvmCheck(f.kvm));
  if (f.libvirt) {
    const { session, system } = f.libvirt;
    checks.push(typeof session === 'string' ? { status: 'warn', name: 'libvirtd (session)', finding: `not probed: ${session}` }
      : session.ok ? { status: 'ok', name: 'libvirtd (session)', finding: session.detail }
      : { status: 'FAIL', name: 'libvirtd (session)', finding: session.detail,
        fix: 'apt-get install libvirt-daemon libvirt-daemon-driver-qemu (the session daemon starts on demand); try `virsh -c qemu:///session version` as that user' });
    checks.push(system.ok
      ? { status: 'ok', name: 'libvirtd (system)', finding: system.detail }
      : { status: 'warn', name: 'libvirtd (system)', finding: `${system.detail} (not needed: the vagrant provider uses rootless qemu:///session)` });
  }
  if (f.network) checks.push(networkCheck(f.network));
  if (f.libvirtGroup !== undefined) {
    const g = f.libvirtGroup;
    checks.push(g === null
      ? { status: 'ok', name: 'libvirt group', finding: 'running as root (skipped: vagrant runs as an unprivileged uid with its own session libvirtd)' }
      : g.member
        ? { status: 'ok', name: 'libvirt group', finding: `${g.user} is a member` }
        : { status: 'warn', name: 'libvirt group', finding: `${g.user} is not a member (only qemu:///system needs it; the session mode does not)`,
          fix: `usermod -aG libvirt ${g.user}, then log in again` });
  }
  if (f.cgroup) {
    checks.push(f.cgroup.ok
      ? { status: 'ok', name: 'memory cgroup', finding: f.cgroup.detail }
      : { status: 'warn', name: 'memory cgroup', finding: `none could be made (${f.cgroup.detail}): local runs go on, but memory limits are NOT enforced`,
        fix: 'run as root on a host with the cgroup memory controller (v2 memory.max, or v1 /sys/fs/cgroup/memory)' });
  }
  checks.push(f.disk.shortfalls.length === 0
    ? { status: 'ok', name: 'free disk', finding: f.disk.summary }
    : { status: 'FAIL', name: 'free disk', finding: f.disk.shortfalls.join('; '),
      fix: 'free some space, run fewer or smaller sizes, or point UPS_CACHE_DIR / UPS_LOCAL_DATA_DIR / TMPDIR elsewhere' });
  if (f.image) checks.push(imageCheck(f, imgState));
  if (f.box) checks.push(boxCheck(f.box, imgState));
  return checks;
}

function kvmCheck(k: NonNullable<Facts['kvm']>): Check {
  const name = 'KVM';
  if ('notProbed' in k) return { status: 'warn', name, finding: `not probed: ${k.notProbed}` };
  if (k.accel === 'kvm') return { status: 'ok', name, finding: 'usable: the probe kernel reached init under KVM' };
  const why = k.devKvm === 'usable'
    ? '/dev/kvm is there, but the probe kernel did not reach init under KVM within 10 s (e.g. a paravirtual KVM)'
    : k.devKvm === 'missing' ? 'there is no /dev/kvm' : '/dev/kvm is not readable and writable by this user';
  return { status: 'warn', name, finding: `TCG only: ${why}; VMs run under software emulation (timeouts x4, numbers not comparable with KVM runs)` };
}

function networkCheck(n: NonNullable<Facts['network']>): Check {
  const name = 'libvirt default network';
  // The suite's vagrant provider always runs libvirt in session mode with QEMU user networking (hostfwd on 127.0.0.1).
  const notNeeded = 'not needed: the session mode uses QEMU user networking (hostfwd on 127.0.0.1), no libvirt network';
  if (n.state === 'active') {
    return { status: 'ok', name, finding: `active, ${n.leases === null ? 'DHCP leases unknown' : `${n.leases} DHCP lease(s)`}${n.detail ? ` (${n.detail})` : ''}` };
  }
  if (n.state === 'inactive') return { status: 'warn', name, finding: `defined but inactive (${notNeeded})`, fix: 'virsh net-start default (./run-tests --doctor --fix does it)' };
  if (n.state === 'undefined') return { status: 'warn', name, finding: `not defined (${notNeeded})` };
  return { status: 'warn', name, finding: `cannot list networks: ${n.detail} (${notNeeded})` };
}

function imageCheck(f: Facts, state: 'ok' | 'buildable' | 'unbuildable'): Check {
  const img = f.image!;
  const name = 'guest image';
  const need = formatBytes(img.needBytes);
  if (state === 'ok') return { status: 'ok', name, finding: `${img.dir} (disk ${formatBytes(img.virtualBytes!)} >= ${need} for the matrix, built ${img.builtAt})` };
  const what = img.virtualBytes === null ? `missing in ${img.dir}` : `too small in ${img.dir} (disk ${formatBytes(img.virtualBytes)} < ${need} for the matrix's largest file)`;
  if (state === 'buildable') {
    return { status: 'warn', name, finding: `${what}: the first run builds it (about 3 min on an idle host, 11 on a busy one)`,
      fix: './run-tests --build-image (or ./run-tests --doctor --fix)' };
  }
  const missing = IMAGE_BUILD_TOOLS.filter((t) => !f.tools[t]);
  return { status: 'FAIL', name, finding: `${what}, and it cannot be built here (${[...(f.root ? [] : ['needs root']), ...missing.map((t) => `no ${t}`)].join(', ')})`,
    fix: [...(missing.length ? [`apt-get install ${[...new Set(missing.map((t) => TOOL_PACKAGES[t]))].join(' ')}`] : []), ...(f.root ? [] : ['run ./run-tests --build-image as root'])].join('; then ') };
}

function boxCheck(b: NonNullable<Facts['box']>, imgState: 'ok' | 'buildable' | 'unbuildable'): Check {
  const name = 'vagrant box';
  if ('error' in b) return { status: 'FAIL', name, finding: `vagrant box list failed: ${b.error}`, fix: 'run `vagrant box list` as the same user and fix what it says' };
  if (b.configured && b.configuredPresent) return { status: 'ok', name, finding: `${b.configured} (vm.box or UPS_VM_BOX) is added` };
  const fallback = b.configured ? `${b.configured} (vm.box or UPS_VM_BOX) is not added (the run tries to add it, else uses ${b.name}); ` : '';
  if (b.wanted && b.versions.includes(b.wanted)) {
    return { status: b.configured ? 'warn' : 'ok', name, finding: `${fallback}${b.name} ${b.wanted} is added (made from the current guest image)` };
  }
  const have = b.versions.length ? `${b.name} has only ${b.versions.join(', ')}` : `${b.name} is not added`;
  if (imgState !== 'unbuildable') {
    return { status: 'warn', name, finding: `${fallback}${have}: the first run makes it from the guest image${b.wanted ? ` (version ${b.wanted})` : ''} and adds it (about 10 s)` };
  }
  return { status: 'FAIL', name, finding: `${fallback}${have}, and there is no guest image to make it from`, fix: 'see the guest image check' };
}

/** The default network's state in `virsh net-list --all` output. */
export function defaultNetworkState(netList: string): 'active' | 'inactive' | 'undefined' {
  for (const line of netList.split('\n')) {
    const [name, state] = line.trim().split(/\s+/);
    if (name === 'default') return state === 'active' ? 'active' : 'inactive';
  }
  return 'undefined';
}

/** Leases in `virsh net-dhcp-leases` output: the rows after the header and its dashed rule. */
export function countLeases(text: string): number {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('Expiry Time') && !/^-+$/.test(l)).length;
}

/** The provider can run when no check failed. */
export function canRun(checks: Check[]): boolean {
  return checks.every((c) => c.status !== 'FAIL');
}

/** One line per check ("ok    name: finding"), an indented fix line where there is one, then the verdict. */
export function renderChecks(provider: ProviderName, checks: Check[]): string {
  const lines = checks.flatMap((c) => [`${c.status.padEnd(4)}  ${c.name}: ${c.finding}`, ...(c.fix ? [`      fix: ${c.fix}`] : [])]);
  const failed = checks.filter((c) => c.status === 'FAIL').length;
  const warned = checks.filter((c) => c.status === 'warn').length;
  lines.push(failed === 0
    ? `provider ${provider} can run${warned ? ` (${warned} warning${warned > 1 ? 's' : ''})` : ''}`
    : `provider ${provider} cannot run: ${failed} check${failed > 1 ? 's' : ''} failed`);
  return `${lines.join('\n')}\n`;
}
