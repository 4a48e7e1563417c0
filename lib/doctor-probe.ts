// `./run-tests --doctor`, the probing half: looks at the host for what the
// chosen provider needs (tools, a memory cgroup, KVM, libvirt, the guest image,
// the vagrant box) and hands the facts to lib/doctor.ts for the verdict. It
// changes nothing, except with --fix: the guest image is built and the libvirt
// default network started, nothing else. `--build-image` lives here too.
//   const code = await runDoctor(matrix, { fix: false })   // prints the checks; 0 can run, 1 cannot
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { $ } from 'zx';
import { createMemoryCgroup, isCgroup } from './providers/cgroup.ts';
import { canRun, countLeases, defaultNetworkState, diagnose, probesFor, renderChecks, toolsFor, type Facts, type Probed } from './doctor.ts';
import { diskNeeds, diskPlanFor, locate, shortfalls } from './diskspace.ts';
import { defaultImageDir, ensureGuestImage, imageBytesFor, readGuestImage, type GuestImage } from './providers/image.ts';
import type { Matrix } from './matrix.ts';
import { chooseAccel } from './providers/accel.ts';
import { findTool } from './tools.ts';
import { formatBytes } from './units.ts';
import { BOX_NAME, boxVersion } from './providers/vagrant-box.ts';
import { configuredBox, parseBoxList, vagrantRunner } from './providers/vagrant.ts';

const PROBE_TIMEOUT_MS = 60_000;

/**
 * Who vagrant and the session libvirtd run as (lib/providers/vagrant.ts's runner):
 * as root, uid 65534 with HOME and XDG_RUNTIME_DIR in the shared scratch
 * folder; else the user. null when that folder does not exist yet (no run has
 * made it, and the doctor creates nothing).
 */
function vagrantUser(): { argv: string[]; env: Record<string, string> } | null {
  const r = vagrantRunner();
  if (r.uid !== null && (!fs.existsSync(r.env.HOME) || !fs.existsSync(r.env.XDG_RUNTIME_DIR))) return null;
  return { argv: r.prefix, env: r.env };
}

async function run(cmd: string[], env?: Record<string, string>) {
  return $({ quiet: true, nothrow: true, timeout: PROBE_TIMEOUT_MS, env, cwd: os.tmpdir() })`${cmd}`;
}

const lastLine = (s: string) => s.trim().split('\n').filter(Boolean).pop() ?? '';

async function virshVersion(uri: string, as: { argv: string[]; env: Record<string, string> } | null): Promise<Probed> {
  if (!findTool('virsh')) return { ok: false, detail: 'virsh not installed' };
  const out = await run([...(as?.argv ?? []), 'virsh', '-c', uri, 'version'], as?.env);
  if (out.exitCode !== 0) return { ok: false, detail: `virsh -c ${uri} version: ${lastLine(out.stderr) || `exit ${out.exitCode}`}` };
  const hv = /Running hypervisor: (.*)/.exec(out.stdout)?.[1] ?? 'answers';
  return { ok: true, detail: `${uri}${as?.argv.length ? ' as uid 65534' : ''} answers (${hv})` };
}

async function probeNetwork(): Promise<NonNullable<Facts['network']>> {
  if (!findTool('virsh')) return { state: null, leases: null, detail: 'virsh not installed' };
  const list = await run(['virsh', '-c', 'qemu:///system', 'net-list', '--all']);
  if (list.exitCode !== 0) return { state: null, leases: null, detail: lastLine(list.stderr) || `exit ${list.exitCode}` };
  const state = defaultNetworkState(list.stdout);
  if (state !== 'active') return { state, leases: null, detail: '' };
  const leases = await run(['virsh', '-c', 'qemu:///system', 'net-dhcp-leases', 'default']);
  return { state, leases: leases.exitCode === 0 ? countLeases(leases.stdout) : null, detail: leases.exitCode === 0 ? '' : lastLine(leases.stderr) };
}

function probeCgroup(): Probed {
  // Named like the local provider's cgroups, so a run that finds it left behind removes it.
  const cg = createMemoryCgroup(`upload-perf-suite-${process.pid}-doctor`, 64 * 1024 * 1024);
  if (!isCgroup(cg)) return { ok: false, detail: cg.error };
  cg.remove();
  return { ok: true, detail: `a cgroup v${cg.version} with a 64 MiB limit was made and removed (${path.dirname(cg.dir)})` };
}

function diskFacts(m: Matrix): Facts['disk'] {
  const located = locate(diskNeeds(diskPlanFor(m)));
  const byDev = new Map<number, typeof located>();
  for (const n of located) byDev.set(n.dev, [...(byDev.get(n.dev) ?? []), n]);
  const summary = [...byDev.values()].map((g) =>
    `${g[0].measured}: about ${formatBytes(g.reduce((a, n) => a + n.bytes, 0))} needed, ${formatBytes(g[0].freeBytes)} free`).join('; ');
  return { shortfalls: shortfalls(located), summary };
}

/** Everything the checks for the matrix's provider need to know about this host. */
export async function probeFacts(m: Matrix): Promise<Facts> {
  const provider = m.provider;
  const probes = probesFor(provider);
  const root = process.getuid?.() === 0;
  const tools = Object.fromEntries(toolsFor(provider).map((t) => [t, findTool(t)]));
  const f: Facts = { provider, root, serverFromSource: m.server.kind === 'source', tools, disk: diskFacts(m) };
  const imageDir = defaultImageDir();
  const image: GuestImage | null = await readGuestImage(imageDir, 0);
  if (probes.includes('cgroup')) f.cgroup = probeCgroup();
  if (probes.includes('image')) {
    f.image = { dir: imageDir, virtualBytes: image?.manifest.disk_virtual_bytes ?? null, needBytes: imageBytesFor(m), builtAt: image?.manifest.built_at ?? null };
  }
  if (probes.includes('kvm')) {
    const devKvm = (() => {
      try { fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK); return 'usable' as const; } catch { return fs.existsSync('/dev/kvm') ? 'no access' as const : 'missing' as const; }
    })();
    f.kvm = !tools['qemu-system-x86_64'] ? { notProbed: 'qemu-system-x86_64 is not installed' }
      : !image ? { notProbed: 'the probe boots the guest image\'s kernel, and there is no image yet' }
        : { accel: await chooseAccel(image), devKvm };
  }
  const user = vagrantUser();
  const noScratch = 'the vagrant provider\'s scratch folder (/var/tmp/upload-perf-suite-vagrant) does not exist yet; the first run makes it';
  if (probes.includes('plugin')) {
    if (!tools.vagrant) f.plugin = { ok: false, detail: 'vagrant is not installed' };
    else {
      const out = await run([...(user?.argv ?? []), 'vagrant', 'plugin', 'list'], user?.env);
      const line = out.stdout.split('\n').find((l) => l.startsWith('vagrant-libvirt'));
      f.plugin = line ? { ok: true, detail: line.trim() } : { ok: false, detail: `not in \`vagrant plugin list\`: ${lastLine(out.stdout + out.stderr)}` };
    }
  }
  if (probes.includes('libvirt')) {
    f.libvirt = {
      session: user ? await virshVersion('qemu:///session', user) : noScratch,
      system: await virshVersion('qemu:///system', null),
    };
  }
  if (probes.includes('network')) f.network = await probeNetwork();
  if (probes.includes('group')) {
    const name = os.userInfo().username;
    f.libvirtGroup = root ? null : { user: name, member: (await run(['id', '-nG'])).stdout.split(/\s+/).includes('libvirt') };
  }
  if (probes.includes('box')) {
    const configured = configuredBox(m.vmBox);
    const wanted = image ? boxVersion(image.manifest) : null;
    if (!tools.vagrant) f.box = { error: 'vagrant is not installed' };
    else if (!user) f.box = { name: BOX_NAME, versions: [], wanted, configured, configuredPresent: false };
    else {
      const out = await run([...user.argv, 'vagrant', 'box', 'list', '--machine-readable'], user.env);
      if (out.exitCode !== 0) f.box = { error: lastLine(out.stderr) || `exit ${out.exitCode}` };
      else {
        const boxes = parseBoxList(out.stdout);
        f.box = { name: BOX_NAME, versions: boxes.filter((b) => b.name === BOX_NAME).map((b) => b.version), wanted, configured,
          configuredPresent: configured !== null && boxes.some((b) => b.name === configured) };
      }
    }
  }
  return f;
}

/** --fix: build the guest image (VM providers) and start the libvirt default network when it is defined but inactive; nothing else. */
async function applyFixes(m: Matrix, say: (line: string) => void): Promise<void> {
  if (m.provider === 'local') return;
  try {
    const img = await ensureGuestImage({ diskBytes: imageBytesFor(m), say });
    say(`fixed: guest image ready in ${img.dir}`);
  } catch (e) {
    say(`fix failed: guest image: ${(e as Error).message}`);
  }
  if (m.provider === 'vagrant' && findTool('virsh')) {
    const list = await run(['virsh', '-c', 'qemu:///system', 'net-list', '--all']);
    if (list.exitCode === 0 && defaultNetworkState(list.stdout) === 'inactive') {
      const start = await run(['virsh', '-c', 'qemu:///system', 'net-start', 'default']);
      say(start.exitCode === 0 ? 'fixed: started the libvirt default network' : `fix failed: virsh net-start default: ${lastLine(start.stderr)}`);
    }
  }
}

/** Prints every check for the matrix's provider and the verdict; 0 when the provider can run, 1 when not. */
export async function runDoctor(m: Matrix, opts: { fix: boolean }, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  if (opts.fix) await applyFixes(m, (line) => out(`${line}\n`));
  const checks = diagnose(await probeFacts(m));
  out(renderChecks(m.provider, checks));
  return canRun(checks) ? 0 : 1;
}
