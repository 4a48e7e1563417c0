// The disk-space check before a run: what the run will write where (test files
// not yet cached, the server's data at about twice the largest file, a guest
// image still to build), summed per filesystem and compared with what is free,
// so a run that cannot fit stops before it starts, with the figures.
//   const needs = diskNeeds({ ... })                       // pure
//   const short = shortfalls(await locate(needs))          // pure over statfs figures
import fs from 'node:fs';
import path from 'node:path';
import { defaultImageDir } from './providers/image.ts';
import type { Matrix } from './matrix.ts';
import { localDataParent } from './paths.ts';
import { makeTestFilesDir, testFilesDir } from './testfiles.ts';
import { formatBytes, MiB } from './units.ts';

export interface DiskNeed {
  /** A folder (it or its nearest existing parent is measured). */
  dir: string;
  bytes: number;
  what: string;
}

export interface DiskPlan {
  sizes: number[];
  /** Sizes whose test file is already cached (nothing to write). */
  cachedSizes: number[];
  testFilesDir: string;
  /** Where the server's data and upload spool live on the host (local provider), or a VM's disk overlay grows. */
  dataDir: string;
  /** Bytes of a guest image still to be built (0 when built, or for the local provider). */
  guestImageBytes: number;
  /** The most uploads the run starts together: each spools and stores its own copy (absent: 1). */
  uploadsAtOnce?: number;
  imageDir: string;
}

/** Logs, the SQLite file's own overhead, results files: small, but not nothing. */
export const HEADROOM_BYTES = 16 * MiB;

/** What a run writes, and where. The server spools an upload, then copies it into its store: about 2x the file at once. Pure. */
export function diskNeeds(p: DiskPlan): DiskNeed[] {
  const needs: DiskNeed[] = [];
  const missing = p.sizes.filter((s) => !p.cachedSizes.includes(s));
  if (missing.length > 0) {
    needs.push({ dir: p.testFilesDir, bytes: missing.reduce((a, b) => a + b, 0), what: `test files not yet cached (${missing.map(formatBytes).join(', ')})` });
  }
  const largest = Math.max(0, ...p.sizes);
  const n = p.uploadsAtOnce ?? 1;
  needs.push({
    dir: p.dataDir, bytes: 2 * n * largest + HEADROOM_BYTES,
    what: `the server's data: 2 x ${n > 1 ? `${n} uploads at once of ` : ''}the largest file (${formatBytes(largest)}) + ${formatBytes(HEADROOM_BYTES)}`,
  });
  if (p.guestImageBytes > 0) needs.push({ dir: p.imageDir, bytes: p.guestImageBytes, what: 'the guest image, still to be built' });
  return needs;
}

export interface LocatedNeed extends DiskNeed {
  /** Device id of the filesystem (needs on one filesystem add up). */
  dev: number;
  freeBytes: number;
  /** The folder actually measured. */
  measured: string;
}

/** Each need with its filesystem's free space (for an unprivileged user: statfs bavail). */
export function locate(needs: DiskNeed[]): LocatedNeed[] {
  return needs.map((n) => {
    let dir = path.resolve(n.dir);
    while (!fs.existsSync(dir)) dir = path.dirname(dir);
    const st = fs.statfsSync(dir);
    return { ...n, dev: fs.statSync(dir).dev, freeBytes: st.bavail * st.bsize, measured: dir };
  });
}

/** One message per filesystem that lacks the space its needs add up to; empty when the run fits. Pure. */
export function shortfalls(needs: LocatedNeed[]): string[] {
  const byDev = new Map<number, LocatedNeed[]>();
  for (const n of needs) byDev.set(n.dev, [...(byDev.get(n.dev) ?? []), n]);
  const out: string[] = [];
  for (const group of byDev.values()) {
    const total = group.reduce((a, n) => a + n.bytes, 0);
    const free = group[0].freeBytes;
    if (total <= free) continue;
    out.push(`${group.map((n) => n.measured).filter((d, i, a) => a.indexOf(d) === i).join(' and ')}: ${formatBytes(free)} free, ` +
      `the run needs about ${formatBytes(total)} there (${group.map((n) => `${n.what}: ${formatBytes(n.bytes)}`).join('; ')})`);
  }
  return out;
}

/** The host is short of disk space for this run (exit 1: nothing was started). */
export class DiskSpaceError extends Error {}

/** A debootstrap'd rootfs (about 700 MB) and its qcow2 (about 230 MB) while the guest image is built. */
const GUEST_IMAGE_BUILD_BYTES = 1024 * MiB;

/** The run's plan as the host sees it now: which test files are cached, where data goes, whether a guest image is missing. */
export function diskPlanFor(m: Matrix): DiskPlan {
  const tfDir = testFilesDir();
  const cached = (bytes: number) => {
    try { return fs.statSync(path.join(tfDir, `${bytes}.bin`)).size === bytes; } catch { return false; }
  };
  const vm = m.provider !== 'local';
  const imageDir = defaultImageDir();
  return {
    sizes: m.sizes.map((s) => s.bytes),
    cachedSizes: m.sizes.map((s) => s.bytes).filter(cached),
    testFilesDir: tfDir,
    // A VM writes into its disk's snapshot overlay, which QEMU keeps in TMPDIR (default /var/tmp).
    dataDir: vm ? (process.env.TMPDIR || '/var/tmp') : localDataParent(),
    guestImageBytes: vm && !fs.existsSync(path.join(imageDir, 'manifest.json')) ? GUEST_IMAGE_BUILD_BYTES : 0,
    imageDir,
    uploadsAtOnce: Math.max(1, ...m.concurrency),
  };
}

/** Throws DiskSpaceError naming each short filesystem with the figures. */
export function checkDiskSpace(plan: DiskPlan): void {
  // Made first (a run makes it anyway): a cache where no folder can be made is named as such (exit 2),
  // not as a disk with 0 B free. --doctor, which changes nothing, reads the plan without this.
  makeTestFilesDir(plan.testFilesDir);
  const short = shortfalls(locate(diskNeeds(plan)));
  if (short.length > 0) {
    throw new DiskSpaceError(`not enough disk space for this run:\n  ${short.join('\n  ')}\n` +
      'Free some space, run fewer or smaller sizes, or point UPS_CACHE_DIR (test files) or UPS_LOCAL_DATA_DIR (server data) elsewhere.');
  }
}
