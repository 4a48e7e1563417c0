// The offline guest image both VM providers boot: Debian bookworm (debootstrap
// minbase) with its kernel unpacked for direct (PVH) boot, an initrd of the
// suite's own, sshd with the suite's own key pair, and Debian's nodejs for the
// stand-in. Built once from Debian's packages only, cached outside the repo,
// and swapped into place whole, so a half-built image is never used.
//
// Boot time is trimmed for software emulation (TCG), where every guest
// instruction counts: measured on image 2, 3.5 s of a boot went to
// decompressing the kernel, 3.5 s to initramfs-tools and its udev, 2.8 s to
// systemd's generators and 5+ s to units the guest never uses.
//
//   const img = await ensureGuestImage({ say })    // builds it when missing (~4 min)
//   img.kernel, img.initrd, img.disk, img.sshKey
//
//   node --import tsx lib/providers/image.ts --build [--disk-size 12GiB] [--force]
import { $, fs, path, type ProcessOutput, type ProcessPromise } from 'zx';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import type { Matrix } from '../matrix.ts';
import { cacheDir } from '../paths.ts';
import { makeDirs } from '../dirs.ts';
import { findTool, IMAGE_BUILD_TOOLS, missingToolMessage } from '../tools.ts';
import { formatBytes } from '../units.ts';
import type { Say } from '../progress.ts';

const GiB = 1024 ** 3;

/** Bump when the recipe changes: an image with another version is rebuilt. */
export const IMAGE_VERSION = 3;
export const DEBIAN_SUITE = 'bookworm';
const FALLBACK_MIRROR = 'http://deb.debian.org/debian';
// udev is named though its units are masked (MASKED_UNITS): the kernel package
// pulls it in anyway (linux-image -> initramfs-tools-core -> udev).
export const GUEST_PACKAGES = [
  'linux-image-amd64', 'systemd-sysv', 'openssh-server', 'iproute2', 'procps', 'kmod', 'udev', 'nodejs',
  'klibc-utils', 'cpio',
];
/** Room for the largest default file (5 GiB) twice over (upload spool + store) plus 2 GiB for the system. */
export const DEFAULT_DISK_BYTES = 5 * GiB * 2 + 2 * GiB;
/** Disk for a matrix whose largest file is `largestFileBytes`: twice that (spool + store) plus 2 GiB, never under the default. */
export function diskBytesFor(largestFileBytes: number): number {
  return Math.max(DEFAULT_DISK_BYTES, 2 * largestFileBytes + 2 * GiB);
}
/** The guest disk a matrix needs: its largest file twice over (spool and store) plus room for the system. */
export function imageBytesFor(m: Pick<Matrix, 'sizes'> & { concurrency?: number[] }): number {
  // N uploads at once spool and store N copies: sized as one file N times as large.
  return diskBytesFor(Math.max(0, ...m.sizes.map((s) => s.bytes)) * Math.max(1, ...(m.concurrency ?? [1])));
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
  /** Where the build's progress goes (the run's Progress line). */
  say: Say;
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
    kernel: path.join(dir, 'vmlinux'),
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
export async function ensureGuestImage(opts: ImageOptions): Promise<GuestImage> {
  const dir = opts.dir ?? defaultImageDir();
  const diskBytes = opts.diskBytes ?? DEFAULT_DISK_BYTES;
  if (!opts.force) {
    const existing = await readGuestImage(dir, diskBytes);
    if (existing) return existing;
  }
  await buildGuestImage(dir, diskBytes, opts.say);
  const built = await readGuestImage(dir, diskBytes);
  if (!built) throw new Error(`guest image in ${dir} is incomplete after building it`);
  return built;
}

// QEMU user networking's fixed guest address on every NIC, set before sshd
// starts; no gateway or DNS: the guest talks to nothing but its forwarded
// ports. (systemd-networkd took 6.9 s of a 30 s TCG boot; a udev rule, image 2,
// needed udev, which cost 2-5 s more.) The initrd has loaded virtio_net.
const NETWORK_UNIT = `[Unit]
Description=upload-perf-suite: the guest's fixed address on QEMU's user network
DefaultDependencies=no
Before=sysinit.target network.target ssh.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/ups-net

[Install]
WantedBy=sysinit.target
`;
const NETWORK_SCRIPT = `#!/bin/sh
for n in /sys/class/net/*; do
  n=\${n##*/}
  [ "$n" = lo ] && continue
  ip link set "$n" up
  ip addr add ${GUEST_ADDRESS} dev "$n"
done
`;
const SSHD_CONFIG = 'PasswordAuthentication no\nPermitRootLogin prohibit-password\nUseDNS no\n';
// Debian's unit checks the config with a second sshd run first: 2 s under TCG.
const SSHD_UNIT_DROPIN = '[Service]\nExecStartPre=\n';
// Root is mounted rw,noatime by the initrd; nothing else to mount, and a fresh snapshot needs no fsck.
const FSTAB = '# / (/dev/vda) is mounted rw,noatime by the suite\'s initrd\n';
// Units that would only cost guest CPU and memory during a boot or a measurement:
// timers, gettys, udev (the initrd loads the only drivers needed, devtmpfs makes
// the nodes), and early-boot services for features the guest doesn't use.
const MASKED_UNITS = [
  'systemd-networkd-wait-online.service', 'apt-daily.timer', 'apt-daily-upgrade.timer',
  'fstrim.timer', 'e2scrub_all.timer', 'e2scrub_reap.service', 'man-db.timer', 'dpkg-db-backup.timer',
  'getty@tty1.service', 'getty-static.service', 'getty.target',
  'systemd-udevd.service', 'systemd-udevd-control.socket', 'systemd-udevd-kernel.socket',
  'systemd-udev-trigger.service', 'systemd-udev-settle.service',
  'dev-hugepages.mount', 'dev-mqueue.mount', 'sys-kernel-debug.mount', 'sys-kernel-tracing.mount',
  'sys-kernel-config.mount', 'sys-fs-fuse-connections.mount', 'proc-sys-fs-binfmt_misc.automount',
  'systemd-binfmt.service', 'kmod-static-nodes.service', 'systemd-pstore.service',
  'modprobe@configfs.service', 'modprobe@dm_mod.service', 'modprobe@efi_pstore.service',
  'modprobe@fuse.service', 'modprobe@loop.service', 'modprobe@drm.service',
  'systemd-journal-flush.service', 'systemd-random-seed.service', 'systemd-sysusers.service',
  'systemd-update-utmp.service', 'systemd-update-utmp-runlevel.service', 'systemd-remount-fs.service',
];
// Each generator is a process systemd runs before it starts any unit (2.8 s in all under TCG);
// the guest has no fstab entries, gettys, sysv scripts or encrypted disks for them to find.
const MASKED_GENERATORS = [
  'systemd-cryptsetup-generator', 'systemd-debug-generator', 'systemd-fstab-generator', 'systemd-getty-generator',
  'systemd-gpt-auto-generator', 'systemd-hibernate-resume-generator', 'systemd-integritysetup-generator',
  'systemd-rc-local-generator', 'systemd-run-generator', 'systemd-system-update-generator',
  'systemd-sysv-generator', 'systemd-veritysetup-generator',
];
// The drivers the initrd loads: disk, network (so the unit above finds the NIC) and the root filesystem.
export const INITRD_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_net', 'ext4'];
// The initrd's /init, run by klibc's sh: modules in dependency order (@INSMODS@),
// the root disk, then systemd. A failure ends init, so the kernel panics and
// the provider reports the serial console's last lines.
const INITRD_INIT = `#!/bin/sh
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
@INSMODS@
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 -o rw,noatime /dev/vda /root || { echo "ups initrd: cannot mount /dev/vda"; exit 1; }
umount /dev
exec run-init /root /sbin/init
`;

/**
 * Writes the kernel proper (the ELF vmlinux inside a bzImage) to `out`. QEMU
 * boots it through its PVH entry point, so the guest doesn't decompress it:
 * 3.5 s of every TCG boot (xz), against 0.7 s once here.
 */
export async function unpackKernel(bzImage: string, out: string): Promise<void> {
  const b = await fs.readFile(bzImage);
  // The boot protocol header: setup sectors, then the payload's offset and length after them.
  const start = ((b[0x1f1] || 4) + 1) * 512 + b.readUInt32LE(0x248);
  const payload = b.subarray(start, start + b.readUInt32LE(0x24c));
  if (payload.subarray(0, 6).equals(Buffer.from('fd377a585a00', 'hex'))) {
    // spawn, not zx: zx would also keep the 66 MB of output in memory; this streams it to the file.
    const fd = fs.openSync(out, 'w');
    try {
      await new Promise<void>((resolve, reject) => {
        const xz = spawn('xz', ['-dc', '--single-stream'], { stdio: ['pipe', fd, 'pipe'] });
        let err = '';
        xz.stderr.on('data', (d) => { err += d; });
        xz.on('error', reject);
        xz.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`xz could not unpack ${bzImage}: ${err.trim()}`))));
        xz.stdin.on('error', () => { /* xz failed: its exit says why */ });
        xz.stdin.end(payload);
      });
    } finally {
      fs.closeSync(fd);
    }
  } else if (payload[0] === 0x1f && payload[1] === 0x8b) {
    await fs.writeFile(out, gunzipSync(payload));
  } else {
    throw new Error(`${bzImage}: kernel payload is neither xz nor gzip`);
  }
  const head = Buffer.alloc(4);
  const fd = fs.openSync(out, 'r');
  fs.readSync(fd, head, 0, 4, 0);
  fs.closeSync(fd);
  if (!head.equals(Buffer.from('7f454c46', 'hex'))) throw new Error(`${bzImage}: unpacked kernel is not an ELF file`);
}

/**
 * An uncompressed initrd with klibc's tools (from the guest's klibc-utils), the
 * INITRD_MODULES with their dependencies, and INITRD_INIT: 0.3 s of a TCG boot
 * where initramfs-tools took 3.5 s, most of it starting udev and waiting on it.
 */
async function writeInitrd(rootfs: string, kernelVersion: string, out: string, logged: (p: ProcessPromise) => Promise<ProcessOutput>): Promise<void> {
  const stage = path.join(rootfs, 'tmp/ups-initrd');
  await fs.remove(stage);
  for (const d of ['bin', 'lib', 'dev', 'proc', 'sys', 'root', 'modules']) await fs.mkdirp(path.join(stage, d));
  const modules: string[] = [];
  for (const m of INITRD_MODULES) {
    const deps = await logged($({ quiet: true })`chroot ${rootfs} modprobe -S ${kernelVersion} --show-depends ${m}`);
    for (const [, ko] of deps.stdout.matchAll(/^insmod (\S+)/gm)) if (!modules.includes(ko)) modules.push(ko);
  }
  for (const ko of modules) await fs.copyFile(path.join(rootfs, ko), path.join(stage, 'modules', path.basename(ko)));
  const klibcBin = path.join(rootfs, 'usr/lib/klibc/bin');
  for (const tool of ['sh', 'mount', 'umount', 'insmod', 'sleep', 'run-init']) await fs.copyFile(path.join(klibcBin, tool), path.join(stage, 'bin', tool));
  // klibc's programs name their shared library as their ELF interpreter: /lib/klibc-<hash>.so.
  const klibcSo = (await readdir(path.join(rootfs, 'usr/lib'))).filter((f) => /^klibc-.*\.so$/.test(f));
  if (klibcSo.length !== 1) throw new Error(`expected one klibc-*.so in the guest's /usr/lib, found ${klibcSo.length}`);
  await fs.copyFile(path.join(rootfs, 'usr/lib', klibcSo[0]), path.join(stage, 'lib', klibcSo[0]));
  const insmods = modules.map((ko) => `insmod /modules/${path.basename(ko)}`).join('\n');
  await fs.writeFile(path.join(stage, 'init'), INITRD_INIT.replace('@INSMODS@', insmods), { mode: 0o755 });
  await logged($({ quiet: true })`mknod ${path.join(stage, 'dev/console')} c 5 1`);
  await logged($({ quiet: true })`chroot ${rootfs} sh -c ${'cd /tmp/ups-initrd && find . | cpio -o -H newc --quiet > /tmp/ups-initrd.cpio'}`);
  await fs.move(path.join(rootfs, 'tmp/ups-initrd.cpio'), out, { overwrite: true });
  await fs.remove(stage);
}

async function buildGuestImage(dir: string, diskBytes: number, log: (line: string) => void): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('building the guest image needs root (debootstrap, chroot)');
  const missing = missingTools(IMAGE_BUILD_TOOLS);
  if (missing.length) throw new Error(`cannot build the guest image, missing: ${missing.join(', ')}`);
  const mirror = await hostMirror();
  const started = Date.now();
  makeDirs(path.dirname(dir), 'the guest image\'s cache folder');
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
  const logged = async (p: ProcessPromise): Promise<ProcessOutput> => {
    const out = await p.nothrow();
    await fs.appendFile(logFile, out.stdout + out.stderr);
    if (out.exitCode !== 0) throw new Error(`image build step failed (exit ${out.exitCode}), see ${logFile}:\n${out.stderr.slice(-2000)}`);
    return out;
  };
  await fs.writeFile(logFile, `guest image build ${new Date().toISOString()} mirror ${mirror}\n`);
  try {
    await step(`debootstrap ${DEBIAN_SUITE} from ${mirror} (2 min on an idle host, 11 on a busy one)`, () =>
      logged(sh`debootstrap --variant=minbase --include=${GUEST_PACKAGES.join(',')} ${DEBIAN_SUITE} ${rootfs} ${mirror}`));

    await step('configure network, sshd, key, units', async () => {
      const etc = (p: string) => path.join(rootfs, 'etc', p);
      await fs.writeFile(etc('hostname'), 'ups-guest\n');
      await fs.writeFile(etc('hosts'), '127.0.0.1 localhost\n127.0.1.1 ups-guest\n');
      await fs.writeFile(etc('fstab'), FSTAB);
      await fs.outputFile(path.join(rootfs, 'usr/local/sbin/ups-net'), NETWORK_SCRIPT, { mode: 0o755 });
      await fs.writeFile(etc('systemd/system/ups-net.service'), NETWORK_UNIT);
      await logged(sh`chroot ${rootfs} systemctl enable ups-net.service`);
      await fs.writeFile(etc('ssh/sshd_config.d/upload-perf-suite.conf'), SSHD_CONFIG);
      await fs.outputFile(etc('systemd/system/ssh.service.d/upload-perf-suite.conf'), SSHD_UNIT_DROPIN);
      await logged(sh`chroot ${rootfs} systemctl mask ${MASKED_UNITS}`);
      await fs.mkdirp(etc('systemd/system-generators'));
      for (const g of MASKED_GENERATORS) await fs.symlink('/dev/null', etc(`systemd/system-generators/${g}`));

      await logged(sh`ssh-keygen -q -t ed25519 -N ${''} -C upload-perf-suite -f ${files.sshKey}`);
      await fs.chmod(files.sshKey, 0o600);
      const sshDir = path.join(rootfs, 'root/.ssh');
      await fs.mkdirp(sshDir, { mode: 0o700 });
      await fs.copyFile(`${files.sshKey}.pub`, path.join(sshDir, 'authorized_keys'));
      await fs.chmod(path.join(sshDir, 'authorized_keys'), 0o600);

      await logged(sh`chroot ${rootfs} apt-get clean`);
      await fs.emptyDir(path.join(rootfs, 'var/lib/apt/lists'));
    });

    const boot = path.join(rootfs, 'boot');
    const kernelName = (await readdir(boot)).find((f) => f.startsWith('vmlinuz-'));
    if (!kernelName) throw new Error(`no kernel in ${boot}`);
    const kernelVersion = kernelName.replace(/^vmlinuz-/, '');
    await step('unpack the kernel, make the initrd', async () => {
      await unpackKernel(path.join(boot, kernelName), files.kernel);
      await writeInitrd(rootfs, kernelVersion, files.initrd, logged);
    });
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
      kernel_version: kernelVersion,
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

/** ./run-tests --build-image: the guest image sized for the matrix's largest file, built when missing or too small; its folder on stdout. */
export async function buildImageCommand(m: Pick<Matrix, 'sizes'>, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const img = await ensureGuestImage({ diskBytes: imageBytesFor(m), say: (line: string) => err(`${line}\n`) });
  err(`guest image: ${img.dir} (disk ${formatBytes(img.manifest.disk_virtual_bytes)}, built ${img.manifest.built_at}, kernel ${img.manifest.kernel_version})\n`);
  out(`${img.dir}\n`);
  return 0;
}
