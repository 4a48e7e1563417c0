// The vagrant provider: one `vagrant up --provider=libvirt` per memory limit
// (VM RAM = the limit) from the top-level Vagrantfile, each in its own project
// folder with a unique VM name so two runs can coexist. `vagrant ssh-config` is
// read once; every command after that is plain ssh through lib/providers/guest.ts.
//
// libvirt runs rootless (qemu:///session, the Vagrantfile's UPS_LIBVIRT_SESSION
// branch). Root cannot use a session daemon, so as root vagrant runs as an
// unprivileged uid (65534) with its HOME, XDG_RUNTIME_DIR and VAGRANT_HOME in a
// scratch folder; a normal user runs it as themselves.
//
//   const provider = new VagrantProvider(launch, { cpus: 1 })
//   const env = await provider.up(256)   // env.facts = { boot_seconds, libvirt_uri, box, accel, ... }
//   ...; await env.down()                // vagrant destroy -f, no qemu process left
//   await killAllVagrantVms()            // run teardown / signal handlers
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import { $, fs, path } from 'zx';
import { GUEST_SERVER_PORT, openGuest, type GuestEnvironment, type SshTarget } from './guest.ts';
import { makeDirs } from '../dirs.ts';
import { ensureGuestImage, type GuestImage } from './image.ts';
import { cacheDir, SUITE_DIR } from '../paths.ts';
import type { Environment, Provider, ProviderContext, ServerLaunch } from './provider.ts';
import { chooseAccel, TCG_TIMEOUT_FACTOR } from './accel.ts';
import { freePort } from './server.ts';
import { PROVIDER_TOOLS, requireTools } from '../tools.ts';
import { BOX_NAME, boxCatalog, boxVersion, writeBox } from './vagrant-box.ts';
import { pidAlive } from '../pids.ts';
import { killWithSuite } from './reaper.ts';

/** The uid vagrant and the session libvirtd run as when the suite runs as root. */
const UNPRIVILEGED_UID = 65534;
const UP_TIMEOUT_MS = 15 * 60_000;

/** The ssh settings of `vagrant ssh-config`'s first host block. */
export function parseSshConfig(text: string): SshTarget {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*(\w+)\s+(.+?)\s*$/.exec(line);
    if (!m) continue;
    const key = m[1].toLowerCase();
    if (key === 'host' && kv.size > 0) break;
    if (!kv.has(key)) kv.set(key, m[2].replace(/^"(.*)"$/, '$1'));
  }
  const port = Number(kv.get('port'));
  const [host, user, identityFile] = [kv.get('hostname'), kv.get('user'), kv.get('identityfile')];
  if (!host || !user || !identityFile || !Number.isInteger(port)) {
    throw new Error(`vagrant ssh-config lacks HostName, Port, User or IdentityFile:\n${text}`);
  }
  return { host, port, user, keyFile: identityFile };
}

export interface BoxVersion { name: string; version: string }

/** Boxes (name and version) in `vagrant box list --machine-readable` output. */
export function parseBoxList(text: string): BoxVersion[] {
  const boxes: BoxVersion[] = [];
  for (const f of text.split('\n').map((l) => l.split(','))) {
    if (f[2] === 'box-name') boxes.push({ name: f[3], version: '0' });
    if (f[2] === 'box-version' && boxes.length) boxes[boxes.length - 1].version = f[3];
  }
  return boxes;
}

/** Where vagrant runs and as whom. */
export interface VagrantRunner {
  /** null: as the current user, with its own environment. */
  uid: number | null;
  /** Prepended to every vagrant or virsh argv (setpriv when root). */
  prefix: string[];
  env: Record<string, string>;
  /** Folder for per-VM project folders and box files. */
  scratch: string;
  /** Where the session libvirtd and virtlogd keep their pid files, when the suite owns them (root case). */
  libvirtRunDir: string | null;
}

/**
 * How the suite runs vagrant here, creating nothing (--doctor reads it too).
 * As root: uid 65534 with HOME, XDG_RUNTIME_DIR and VAGRANT_HOME in a scratch
 * folder shared by all runs, like one user's session on a workstation: the
 * box is added and uploaded into libvirt's pool once, one libvirtd serves all.
 */
export function vagrantRunner(): VagrantRunner {
  const base = { VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_COLOR: '1', LIBVIRT_DEFAULT_URI: 'qemu:///session' };
  if (process.getuid?.() !== 0) {
    const scratch = path.join(cacheDir(), 'vagrant');
    return { uid: null, prefix: [], env: { ...process.env as Record<string, string>, ...base }, scratch, libvirtRunDir: null };
  }
  const scratch = process.env.UPS_VAGRANT_DIR ?? path.join('/var/tmp', 'upload-perf-suite-vagrant');
  const home = path.join(scratch, 'home');
  const runtime = path.join(scratch, 'run');
  const uid = UNPRIVILEGED_UID;
  return {
    uid,
    prefix: ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all'],
    env: {
      ...base,
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      LANG: 'C.UTF-8',
      HOME: home,
      XDG_RUNTIME_DIR: runtime,
      VAGRANT_HOME: path.join(home, '.vagrant.d'),
    },
    scratch,
    libvirtRunDir: path.join(runtime, 'libvirt'),
  };
}

let runnerPromise: Promise<VagrantRunner> | null = null;

/** The runner with its folders made (owned by its user), and what killed runs left behind destroyed. */
function runner(): Promise<VagrantRunner> {
  runnerPromise ??= (async () => {
    const r = vagrantRunner();
    await ownedDir(r, r.scratch);
    if (r.uid !== null) {
      await ownedDir(r, r.env.HOME);
      await ownedDir(r, r.env.XDG_RUNTIME_DIR);
      await fs.chmod(r.env.XDG_RUNTIME_DIR, 0o700);
    }
    await reapStaleProjects(r);
    return r;
  })();
  return runnerPromise;
}

/** Runs `cmd` (vagrant or virsh) as the runner's user; never throws, the caller reads exitCode. */
async function as(r: VagrantRunner, cmd: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number; signal?: AbortSignal } = {}) {
  // Vagrant wants a writable .vagrant beside its cwd even for box commands.
  return $({ quiet: true, nothrow: true, cwd: opts.cwd ?? r.scratch, env: { ...r.env, ...opts.env }, timeout: opts.timeoutMs, signal: opts.signal })`${[...r.prefix, ...cmd]}`;
}

/** A folder the runner's user owns. */
async function ownedDir(r: VagrantRunner, dir: string): Promise<string> {
  makeDirs(dir, 'a vagrant folder');
  if (r.uid !== null) await fs.chown(dir, r.uid, r.uid);
  return dir;
}

/** The box a run boots instead of the suite's own: UPS_VM_BOX, else the matrix's vm.box, else none. */
export function configuredBox(matrixBox: string | null | undefined): string | null {
  return process.env.UPS_VM_BOX || matrixBox || null;
}

/** The box to boot: the configured one when it is there or can be added, else the suite's own box (added when missing) with its image. */
async function ensureBox(r: VagrantRunner, configured: string | null, diskBytes: number | undefined, log: (m: string) => void): Promise<{ box: string; version: string | null; image: GuestImage | null }> {
  const have = await boxList(r);
  if (configured) {
    if (have.some((b) => b.name === configured)) return { box: configured, version: null, image: null };
    const add = await as(r, ['vagrant', 'box', 'add', '--provider', 'libvirt', configured], { timeoutMs: 20 * 60_000 });
    if (add.exitCode === 0) return { box: configured, version: null, image: null };
    log(`WARNING: box ${configured} (vm.box or UPS_VM_BOX) could not be added, using the suite's own box: ${tail(add.stderr, 1)}`);
  }
  const image = await ensureGuestImage({ say: log, diskBytes });
  const version = boxVersion(image.manifest);
  if (have.some((b) => b.name === BOX_NAME && b.version === version)) return { box: BOX_NAME, version, image };
  const t0 = Date.now();
  const dir = await ownedDir(r, path.join(r.scratch, 'boxes'));
  const boxFile = path.join(dir, `bookworm-${version}.box`);
  const catalog = path.join(dir, `bookworm-${version}.json`);
  await writeBox(image, boxFile);
  await fs.writeFile(catalog, boxCatalog(version, boxFile));
  try {
    const add = await as(r, ['vagrant', 'box', 'add', '--provider', 'libvirt', catalog], { timeoutMs: 10 * 60_000 });
    if (add.exitCode !== 0) throw new Error(`vagrant box add ${BOX_NAME} ${version} failed: ${tail(add.stderr, 10)}`);
  } finally {
    await fs.remove(boxFile);
    await fs.remove(catalog);
  }
  log(`vagrant: added box ${BOX_NAME} ${version} from the guest image in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await pruneOldBoxes(r, log);
  return { box: BOX_NAME, version, image };
}

async function boxList(r: VagrantRunner): Promise<BoxVersion[]> {
  const list = await as(r, ['vagrant', 'box', 'list', '--machine-readable']);
  if (list.exitCode !== 0) throw new Error(`vagrant box list failed: ${tail(list.stderr, 5)}`);
  return parseBoxList(list.stdout);
}

// An image rebuild leaves the previous box version (230 MB) and its base volume
// in libvirt's pool (another 230 MB; vagrant-libvirt never deletes it). Both go
// once no VM uses them: vagrant keeps versions in use, and a volume is only
// deleted while libvirt holds no VM at all.
async function pruneOldBoxes(r: VagrantRunner, log: (m: string) => void): Promise<void> {
  await as(r, ['vagrant', 'box', 'prune', '--name', BOX_NAME, '--provider', 'libvirt', '--force', '--keep-active-boxes']);
  if (await libvirtBusy(r)) return;
  const kept = new Set((await boxList(r)).filter((b) => b.name === BOX_NAME).map((b) => b.version));
  const vols = await as(r, ['virsh', '-c', 'qemu:///session', 'vol-list', '--pool', 'default'], { timeoutMs: 30_000 });
  const prefix = `${BOX_NAME.replace('/', '-VAGRANTSLASH-')}_vagrant_box_image_`;
  for (const vol of vols.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0])) {
    if (!vol?.startsWith(prefix) || kept.has(vol.slice(prefix.length).replace(/_box\.img$/, ''))) continue;
    const del = await as(r, ['virsh', '-c', 'qemu:///session', 'vol-delete', '--pool', 'default', vol], { timeoutMs: 60_000 });
    if (del.exitCode === 0) log(`vagrant: deleted old base volume ${vol}`);
  }
}

/** libvirt's domain type: UPS_LIBVIRT_DRIVER when set, else kvm only when KVM really boots the suite's kernel. */
async function libvirtDriver(image: GuestImage | null): Promise<'kvm' | 'qemu'> {
  const forced = process.env.UPS_LIBVIRT_DRIVER;
  if (forced === 'kvm' || forced === 'qemu') return forced;
  if (image) return (await chooseAccel(image)) === 'kvm' ? 'kvm' : 'qemu';
  return fs.access('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK).then(() => 'kvm' as const, () => 'qemu' as const);
}

interface VagrantVm {
  ssh: SshTarget;
  /** Host port on 127.0.0.1 forwarded to GUEST_SERVER_PORT in the guest. */
  serverPort: number;
  facts: Record<string, unknown>;
  /** Whether a qemu process of this VM is running. */
  running(): Promise<boolean>;
  /** `vagrant destroy -f`, then no qemu process of this VM left; idempotent, never throws. */
  destroy(): Promise<void>;
}

/** Every VM booted and not yet destroyed, for killAllVagrantVms(). */
const live = new Set<VagrantVm>();

/** Destroys every VM this process booted; for run teardown and signal handlers. */
export async function killAllVagrantVms(): Promise<void> {
  await Promise.all([...live].map((vm) => vm.destroy()));
}

export interface VagrantOptions {
  /** vCPUs per VM; default 1. */
  cpus?: number;
  /** A box to boot instead of the suite's own (matrix vm.box); UPS_VM_BOX overrides it. */
  box?: string | null;
  /** Guest disk the run needs (imageBytesFor): a smaller cached guest image is rebuilt before the suite's box is made from it. */
  diskBytes?: number;
}

export class VagrantProvider implements Provider {
  readonly name = 'vagrant' as const;
  private log: (line: string) => void;

  constructor(private launch: ServerLaunch, private opts: VagrantOptions & ProviderContext) {
    this.log = opts.say;
  }

  async up(memoryMb: number): Promise<Environment> {
    requireTools(PROVIDER_TOOLS.vagrant);
    // Ctrl-C or SIGTERM during a boot of minutes: stop vagrant, destroy, no retry.
    return this.boot(memoryMb, this.opts.signal ?? new AbortController().signal);
  }

  waitingFor(): string[] {
    return [...live].map((vm) => `vagrant VM ${String(vm.facts.vm_name ?? '(booting)')}`);
  }

  close(): Promise<void> {
    return killAllVagrantVms();
  }

  private async boot(memoryMb: number, interrupted: AbortSignal): Promise<Environment> {
    const r = await runner();
    const { box, version, image } = await ensureBox(r, configuredBox(this.opts.box), this.opts.diskBytes, this.log);
    const driver = await libvirtDriver(image);
    const cpus = this.opts.cpus ?? 1;
    const factor = driver === 'qemu' ? TCG_TIMEOUT_FACTOR : 1;
    for (let attempt = 1; ; attempt++) {
      const t0 = Date.now();
      let vm: VagrantVm | null = null;
      let env: GuestEnvironment | null = null;
      // Host side of the guest layer: its ssh control socket, the stand-in bundle.
      const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ups-vagrant-'));
      try {
        vm = await bootOnce(r, { box, version, driver, memoryMb, cpus }, interrupted);
        const booted = vm;
        env = await openGuest({
          memoryMb, facts: vm.facts, ssh: vm.ssh, httpPort: vm.serverPort, launch: this.launch, timeoutFactor: factor, workDir,
          destroy: async () => { await booted.destroy(); await fs.remove(workDir); },
        }, () => booted.running(), 60_000 * factor);
        vm.facts.timeout_factor = factor;
        vm.facts.ready_seconds = Math.round((Date.now() - t0) / 100) / 10;
        if (interrupted.aborted) throw new Error('interrupted');
        this.log(`vagrant: ${memoryMb} MB VM up in ${vm.facts.boot_seconds} s (${driver}, ${cpus} vCPU, box ${vm.facts.box}, ` +
          `ssh ${vm.ssh.host}:${vm.ssh.port}, server 127.0.0.1:${vm.serverPort})`);
        return env;
      } catch (err) {
        // down() also closes the guest layer's ssh connection.
        await (env ? env.down() : vm?.destroy());
        await fs.remove(workDir);
        if (interrupted.aborted) throw new Error(`vagrant: boot at ${memoryMb} MB interrupted`);
        if (attempt === 2) throw err;
        this.log(`vagrant: boot at ${memoryMb} MB failed, retrying once: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  }
}

async function bootOnce(
  r: VagrantRunner, o: { box: string; version: string | null; driver: 'kvm' | 'qemu'; memoryMb: number; cpus: number }, signal: AbortSignal,
): Promise<VagrantVm> {
  const name = `ups-${o.memoryMb}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const project = await ownedDir(r, path.join(r.scratch, 'projects', name));
  await fs.copyFile(path.join(SUITE_DIR, 'Vagrantfile'), path.join(project, 'Vagrantfile'));
  const [sshPort, serverPort] = [await freePort(), await freePort()];
  const env = {
    UPS_VM_MEMORY_MB: String(o.memoryMb),
    UPS_VM_CPUS: String(o.cpus),
    UPS_VM_BOX: o.box,
    UPS_VM_BOX_VERSION: o.version ?? '',
    UPS_VM_NAME: name,
    UPS_SSH_PORT: String(sshPort),
    UPS_SERVER_PORT: String(serverPort),
    UPS_GUEST_SERVER_PORT: String(GUEST_SERVER_PORT),
    UPS_LIBVIRT_DRIVER: o.driver,
    UPS_LIBVIRT_SESSION: '1',
  };
  const domain = `${name}_default`;
  let destroyed = false;
  const vm: VagrantVm = {
    ssh: { host: '127.0.0.1', port: sshPort, user: 'root', keyFile: '' },
    serverPort,
    facts: {},
    running: async () => (await qemuPidsOf(domain)).length > 0,
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      const t0 = Date.now();
      await as(r, ['vagrant', 'destroy', '-f'], { cwd: project, env, timeoutMs: 5 * 60_000 });
      await killQemuOf(domain);
      vm.facts.destroy_seconds = Math.round((Date.now() - t0) / 100) / 10;
      live.delete(vm);
      vmPids.delete(vm);
      await fs.remove(project).catch(() => {});
      if (live.size === 0) await stopIdleLibvirtd(r);
    },
  };
  live.add(vm);
  hookExit();
  const t0 = Date.now();
  const up = await as(r, ['vagrant', 'up', '--provider=libvirt'], { cwd: project, env, timeoutMs: UP_TIMEOUT_MS, signal });
  const bootSeconds = (Date.now() - t0) / 1000;
  if (up.exitCode !== 0) {
    await vm.destroy();
    throw new Error(`vagrant up (${name}, ${o.memoryMb} MB) failed with exit ${up.exitCode} after ${bootSeconds.toFixed(1)} s:\n${tail(up.stdout + up.stderr, 15)}`);
  }
  vmPids.set(vm, await qemuPidsOf(domain));
  // libvirtd, not the suite, parents the guest's QEMU: the watcher kills it should the suite die without its teardown.
  for (const pid of vmPids.get(vm)!) killWithSuite(pid);
  const cfg = await as(r, ['vagrant', 'ssh-config'], { cwd: project, env, timeoutMs: 60_000 });
  if (cfg.exitCode !== 0) {
    await vm.destroy();
    throw new Error(`vagrant ssh-config (${name}) failed: ${tail(cfg.stderr, 5)}`);
  }
  vm.ssh = parseSshConfig(cfg.stdout);
  Object.assign(vm.facts, {
    boot_seconds: Math.round(bootSeconds * 10) / 10,
    libvirt_uri: 'qemu:///session',
    libvirt_driver: o.driver,
    accel: o.driver === 'kvm' ? 'kvm' : 'tcg',
    box: o.version ? `${o.box} ${o.version}` : o.box,
    vm_name: domain,
    cpus: o.cpus,
    vagrant_user: r.uid === null ? os.userInfo().username : `uid ${r.uid}`,
  });
  return vm;
}

/** qemu pids of each live VM, so an exiting process can still kill them synchronously. */
const vmPids = new Map<VagrantVm, number[]>();
let exitHooked = false;

// Last resort when the run ends without its teardown (killAllVagrantVms is
// async; an 'exit' handler can't wait): the VMs' qemu processes die with it.
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', () => {
    for (const vm of live) {
      for (const pid of vmPids.get(vm) ?? []) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone already */ }
      }
    }
  });
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Kills any qemu process still running for libvirt domain `domain` (libvirt names it with -name guest=DOMAIN). */
async function killQemuOf(domain: string): Promise<void> {
  for (const pid of await qemuPidsOf(domain)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone already */ }
  }
}

/** Pids of qemu processes whose command line names libvirt domain `domain`. */
export async function qemuPidsOf(domain: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (argv.includes('qemu-system') && argv.split('\0').some((a) => a === `guest=${domain}` || a.startsWith(`guest=${domain},`))) {
      pids.push(Number(entry));
    }
  }
  return pids;
}

/** Stops the session libvirtd (and its virtlogd) the suite started as root once it holds no domain; a user's own daemon is left alone. */
async function stopIdleLibvirtd(r: VagrantRunner): Promise<void> {
  if (!r.libvirtRunDir || await libvirtBusy(r)) return;
  for (const daemon of ['libvirtd', 'virtlogd']) {
    const pid = Number((await readFile(path.join(r.libvirtRunDir, `${daemon}.pid`), 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone already */ }
  }
}

/** Whether the session libvirt holds any VM, running or being created (or can't be asked). */
async function libvirtBusy(r: VagrantRunner): Promise<boolean> {
  const domains = await as(r, ['virsh', '-c', 'qemu:///session', 'list', '--all', '--name'], { timeoutMs: 30_000 });
  return domains.exitCode !== 0 || domains.stdout.trim() !== '';
}

// A run killed outright (SIGKILL, a crash) leaves its project folder and the
// libvirt domain defined in it. Its folder name carries the run's pid: once
// that process is gone, the next run destroys what it left.
async function reapStaleProjects(r: VagrantRunner): Promise<void> {
  const projects = path.join(r.scratch, 'projects');
  for (const name of await readdir(projects).catch(() => [] as string[])) {
    const pid = Number(/^ups-\d+-(\d+)-[0-9a-f]+$/.exec(name)?.[1]);
    if (!pid || pid === process.pid || pidAlive(pid)) continue;
    const dir = path.join(projects, name);
    await as(r, ['vagrant', 'destroy', '-f'], { cwd: dir, env: { UPS_VM_NAME: name, UPS_LIBVIRT_SESSION: '1' }, timeoutMs: 5 * 60_000 });
    await killQemuOf(`${name}_default`);
    await fs.remove(dir);
  }
}

