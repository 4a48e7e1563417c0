// The offline guest image both VM providers boot: Debian bookworm (debootstrap
// minbase) with a kernel, a small initrd, sshd with the suite's own key pair,
// and Debian's nodejs for the stand-in. Built once from Debian's packages only,
// cached outside the repo, and swapped into place whole, so a half-built image
// is never used.
//
//   const img = await ensureGuestImage()      // builds it when missing (~3 min)
//   img.kernel, img.initrd, img.disk, img.sshKey
//
//   node --import tsx lib/image.ts --build [--disk-size 12GiB] [--force]
import { $, fs, path, type ProcessPromise } from 'zx';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { cacheDir } from './paths.ts';
import { findTool, IMAGE_BUILD_TOOLS, missingToolMessage } from './tools.ts';
import { formatBytes, parseSize } from './units.ts';

const GiB = 1024 ** 3;

/** Bump when the recipe changes: an image with another version is rebuilt. */
export const IMAGE_VERSION = 2;
export const DEBIAN_SUITE = 'bookworm';
const FALLBACK_MIRROR = 'http://deb.debian.org/debian';
export const GUEST_PACKAGES = [
  'linux-image-amd64', 'systemd-sysv', 'openssh-server', 'iproute2', 'procps', 'kmod', 'udev', 'nodejs',
];
/** Room for the largest default file (5 GiB) twice over (upload spool + store) plus 2 GiB for the system. */
export const DEFAULT_DISK_BYTES = 5 * GiB * 2 + 2 * GiB;
/** Disk for a matrix whose largest file is `largestFileBytes`: twice that (spool + store) plus 2 GiB, never under the default. */
export function diskBytesFor(largestFileBytes: number): number {
  return Math.max(DEFAULT_DISK_BYTES, 2 * largestFileBytes + 2 * GiB);
}
/** The guest's fixed address on QEMU's user network (its default guest address). */
export const GUEST_ADDRESS = '10.0.2.15/24';

export interface GuestImage {
  dir: string;
  kernel: string;
  initrd: string;
  /** qcow2, booted with snapshot=on so every boot starts fresh. */
  disk: string;
  /** Private key (mode 600) whose public half is in the guest root's authorized_keys. */
  sshKey: string;
  manifest: ImageManifest;
}

export interface ImageManifest {
  image_version: number;
  debian_suite: string;
  mirror: string;
  packages: string[];
  kernel_version: string;
  guest_node_version: string;
  disk_virtual_bytes: number;
  disk_file_bytes: number;
  initrd_bytes: number;
  build_seconds: number;
  built_at: string;
}

export interface ImageOptions {
  /** Folder holding the image; default <cache>/image. */
  dir?: string;
  /** Virtual disk size; the disk is sparse, so a large one costs nothing until used. */
  diskBytes?: number;
  /** Rebuild even when a usable image is there. */
  force?: boolean;
  /** Progress lines; default stderr. */
  log?: (line: string) => void;
}


export function defaultImageDir(): string {
  return path.join(cacheDir(), 'image');
}

/**
 * The Debian mirror apt already uses for `suite`, from one-line (.list) or
 * deb822 (.sources) files; security and -updates entries don't qualify.
 */
export function mirrorFromAptSources(files: { name: string; text: string }[], suite: string): string | null {
  for (const { name, text } of files) {
    if (name.endsWith('.list')) {
      for (const line of text.split('\n')) {
        const words = line.replace(/#.*/, '').replace(/\[[^\]]*\]/, ' ').trim().split(/\s+/);
        if (words[0] === 'deb' && words[2] === suite) return words[1].replace(/\/+$/, '');
      }
    } else if (name.endsWith('.sources')) {
      for (const para of text.split(/\n\s*\n/)) {
        const field = (key: string) => {
          const m = new RegExp(`^${key}:\\s*(.*)$`, 'mi').exec(para.replace(/^#.*$/gm, ''));
          return m ? m[1].trim().split(/\s+/) : [];
        };
        if (field('Enabled')[0]?.toLowerCase() === 'no') continue;
        if (field('Types').includes('deb') && field('Suites').includes(suite)) {
          const uri = field('URIs')[0];
          if (uri) return uri.replace(/\/+$/, '');
        }
      }
    }
  }
  return null;
}

async function hostMirror(): Promise<string> {
  if (process.env.UPS_DEBIAN_MIRROR) return process.env.UPS_DEBIAN_MIRROR;
  const files: { name: string; text: string }[] = [];
  const candidates = ['/etc/apt/sources.list'];
  const dir = '/etc/apt/sources.list.d';
  if (await fs.pathExists(dir)) candidates.push(...(await readdir(dir)).sort().map((f) => path.join(dir, f)));
  for (const f of candidates) {
    if (await fs.pathExists(f)) files.push({ name: f, text: await fs.readFile(f, 'utf8') });
  }
  return mirrorFromAptSources(files, DEBIAN_SUITE) ?? FALLBACK_MIRROR;
}

/** Host commands (and their Debian packages) that are missing, e.g. ["debootstrap (apt-get install debootstrap)"]. */
/** The tools among `tools` that are not installed, each named with its Debian package (lib/tools.ts's table). */
export function missingTools(tools: readonly string[]): string[] {
  return tools.filter((t) => findTool(t) === null).map(missingToolMessage);
}

function imageFiles(dir: string) {
  return {
    kernel: path.join(dir, 'vmlinuz'),
    initrd: path.join(dir, 'initrd.img'),
    disk: path.join(dir, 'disk.qcow2'),
    sshKey: path.join(dir, 'id_ed25519'),
    manifest: path.join(dir, 'manifest.json'),
  };
}

/** The image in `dir` when it is complete, of this recipe and at least `diskBytes` large; else null. */
export async function readGuestImage(dir = defaultImageDir(), diskBytes = 0): Promise<GuestImage | null> {
  const files = imageFiles(dir);
  let manifest: ImageManifest;
  try {
    manifest = JSON.parse(await fs.readFile(files.manifest, 'utf8'));
  } catch {
    return null;
  }
  if (manifest.image_version !== IMAGE_VERSION || manifest.disk_virtual_bytes < diskBytes) return null;
  for (const f of [files.kernel, files.initrd, files.disk, files.sshKey]) {
    if (!(await fs.pathExists(f))) return null;
  }
  return { dir, kernel: files.kernel, initrd: files.initrd, disk: files.disk, sshKey: files.sshKey, manifest };
}

/** The guest image, built first when missing, outdated or too small for `diskBytes`. */
export async function ensureGuestImage(opts: ImageOptions = {}): Promise<GuestImage> {
  const dir = opts.dir ?? defaultImageDir();
  const diskBytes = opts.diskBytes ?? DEFAULT_DISK_BYTES;
  if (!opts.force) {
    const existing = await readGuestImage(dir, diskBytes);
    if (existing) return existing;
  }
  await buildGuestImage(dir, diskBytes, opts.log ?? ((line) => process.stderr.write(`${line}\n`)));
  const built = await readGuestImage(dir, diskBytes);
  if (!built) throw new Error(`guest image in ${dir} is incomplete after building it`);
  return built;
}

// QEMU user networking's fixed guest address on the NIC, set by udev the moment
// the NIC appears; no gateway or DNS: the guest talks to nothing but its
// forwarded ports. (systemd-networkd did the same in 6.9 s of a 30 s TCG boot,
// on ssh's critical path.)
const NETWORK_RULE = `SUBSYSTEM=="net", ACTION=="add", KERNEL!="lo", RUN+="/sbin/ip link set $name up", RUN+="/sbin/ip addr add ${GUEST_ADDRESS} dev $name"\n`;
const SSHD_CONFIG = 'PasswordAuthentication no\nPermitRootLogin prohibit-password\nUseDNS no\n';
// Only what direct kernel boot from a virtio disk needs: 7 MB instead of 37 MB.
const INITRD_MODULES = 'virtio_pci\nvirtio_blk\nvirtio_net\next4\n';
// Units that would only cost guest CPU and memory during a measurement.
const MASKED_UNITS = [
  'systemd-networkd-wait-online.service', 'apt-daily.timer', 'apt-daily-upgrade.timer',
  'fstrim.timer', 'e2scrub_all.timer', 'e2scrub_reap.service', 'man-db.timer', 'getty@tty1.service',
];

async function buildGuestImage(dir: string, diskBytes: number, log: (line: string) => void): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('building the guest image needs root (debootstrap, chroot)');
  const missing = missingTools(IMAGE_BUILD_TOOLS);
  if (missing.length) throw new Error(`cannot build the guest image, missing: ${missing.join(', ')}`);
  const mirror = await hostMirror();
  const started = Date.now();
  await fs.mkdirp(path.dirname(dir));
  const tmp = await fs.mkdtemp(path.join(path.dirname(dir), `.${path.basename(dir)}.build-`));
  const logFile = path.join(path.dirname(dir), 'image-build.log');
  const rootfs = path.join(tmp, 'rootfs');
  const files = imageFiles(tmp);
  const step = async (what: string, fn: () => Promise<unknown>) => {
    log(`image: ${what} (${Math.round((Date.now() - started) / 1000)} s)`);
    await fs.appendFile(logFile, `\n== ${what}\n`);
    await fn();
  };
  // Long tool output goes to the build log, not the terminal.
  const sh = $({ quiet: true, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' } });
  const logged = async (p: ProcessPromise) => {
    const out = await p.nothrow();
    await fs.appendFile(logFile, out.stdout + out.stderr);
    if (out.exitCode !== 0) throw new Error(`image build step failed (exit ${out.exitCode}), see ${logFile}:\n${out.stderr.slice(-2000)}`);
    return out;
  };
  await fs.writeFile(logFile, `guest image build ${new Date().toISOString()} mirror ${mirror}\n`);
  try {
    await step(`debootstrap ${DEBIAN_SUITE} from ${mirror} (2 min on an idle host, 11 on a busy one)`, () =>
      logged(sh`debootstrap --variant=minbase --include=${GUEST_PACKAGES.join(',')} ${DEBIAN_SUITE} ${rootfs} ${mirror}`));

    await step('configure network, sshd, key, initrd', async () => {
      const etc = (p: string) => path.join(rootfs, 'etc', p);
      await fs.writeFile(etc('hostname'), 'ups-guest\n');
      await fs.writeFile(etc('hosts'), '127.0.0.1 localhost\n127.0.1.1 ups-guest\n');
      await fs.writeFile(etc('fstab'), '/dev/vda / ext4 rw,noatime 0 1\n');
      await fs.writeFile(etc('udev/rules.d/90-upload-perf-suite-net.rules'), NETWORK_RULE);
      await fs.writeFile(etc('ssh/sshd_config.d/upload-perf-suite.conf'), SSHD_CONFIG);
      await logged(sh`chroot ${rootfs} systemctl mask ${MASKED_UNITS}`);

      await logged(sh`ssh-keygen -q -t ed25519 -N ${''} -C upload-perf-suite -f ${files.sshKey}`);
      await fs.chmod(files.sshKey, 0o600);
      const sshDir = path.join(rootfs, 'root/.ssh');
      await fs.mkdirp(sshDir, { mode: 0o700 });
      await fs.copyFile(`${files.sshKey}.pub`, path.join(sshDir, 'authorized_keys'));
      await fs.chmod(path.join(sshDir, 'authorized_keys'), 0o600);

      await fs.writeFile(etc('initramfs-tools/modules'), INITRD_MODULES);
      const conf = etc('initramfs-tools/initramfs.conf');
      await fs.writeFile(conf, (await fs.readFile(conf, 'utf8')).replace(/^MODULES=.*$/m, 'MODULES=list'));
      await logged(sh`chroot ${rootfs} update-initramfs -u -k all`);
      await logged(sh`chroot ${rootfs} apt-get clean`);
      await fs.emptyDir(path.join(rootfs, 'var/lib/apt/lists'));
    });

    const boot = path.join(rootfs, 'boot');
    const kernelName = (await readdir(boot)).find((f) => f.startsWith('vmlinuz-'));
    const initrdName = (await readdir(boot)).find((f) => f.startsWith('initrd.img-'));
    if (!kernelName || !initrdName) throw new Error(`no kernel or initrd in ${boot}`);
    await fs.copyFile(path.join(boot, kernelName), files.kernel);
    await fs.copyFile(path.join(boot, initrdName), files.initrd);
    const nodeVersion = (await logged(sh`chroot ${rootfs} node --version`)).stdout.trim();

    const raw = path.join(tmp, 'disk.raw');
    await step(`mkfs.ext4 -d into a sparse ${formatBytes(diskBytes)} disk, convert to qcow2`, async () => {
      await fs.writeFile(raw, '');
      await fs.truncate(raw, diskBytes);
      await logged(sh`mkfs.ext4 -q -F -L ups-root -d ${rootfs} ${raw}`);
      await logged(sh`qemu-img convert -c -O qcow2 ${raw} ${files.disk}`);
      await fs.remove(raw);
    });
    await fs.remove(rootfs);

    const manifest: ImageManifest = {
      image_version: IMAGE_VERSION,
      debian_suite: DEBIAN_SUITE,
      mirror,
      packages: GUEST_PACKAGES,
      kernel_version: kernelName.replace(/^vmlinuz-/, ''),
      guest_node_version: nodeVersion,
      disk_virtual_bytes: diskBytes,
      disk_file_bytes: (await fs.stat(files.disk)).size,
      initrd_bytes: (await fs.stat(files.initrd)).size,
      build_seconds: Math.round((Date.now() - started) / 1000),
      built_at: new Date().toISOString(),
    };
    await fs.writeFile(files.manifest, `${JSON.stringify(manifest, null, 2)}\n`);

    // Swap the finished build in; the old image (if any) goes only after that.
    const old = `${dir}.old-${process.pid}`;
    if (await fs.pathExists(dir)) await fs.rename(dir, old);
    await fs.rename(tmp, dir);
    await fs.remove(old);
    log(`image: done in ${manifest.build_seconds} s: ${dir} (qcow2 ${formatBytes(manifest.disk_file_bytes)}, virtual ${formatBytes(diskBytes)}, kernel ${manifest.kernel_version}, node ${nodeVersion})`);
  } finally {
    await fs.remove(tmp);
  }
}

async function cli(argv: string[]): Promise<number> {
  if (!argv.includes('--build')) {
    process.stderr.write('usage: node --import tsx lib/image.ts --build [--disk-size 12GiB] [--force] [--dir DIR]\n');
    return 2;
  }
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const size = opt('--disk-size');
  const img = await ensureGuestImage({
    dir: opt('--dir'),
    diskBytes: size ? parseSize(size) : undefined,
    force: argv.includes('--force'),
  });
  process.stdout.write(`${img.dir}\n`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
