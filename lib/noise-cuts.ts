// What the suite does just before each measured upload to cut the
// instrument's own noise (issue 28). Each is one named technique, tried one at
// a time in an A/A of the real server and kept as a default only when it
// lowered the per-round paired spread (README: "Where the noise comes from").
// The list in force is recorded in config.json (`noise_cuts`); matrix.yaml's
// `noise_cuts:` or `--noise-cuts LIST|none` changes it.
//
//   const cuts = parseNoiseCuts('sync,pretouch')
//   const spent = await applyNoiseCuts(cuts, { serverPid, fileBytes, warm })   // seconds it took
//
// - sync: write dirty pages back (the previous iteration's store and spool)
//   so that writeback does not land inside the measured upload.
// - drop-caches: sync, then drop the page cache (root, local provider; it
//   drops every other process's cache too, so it is never a default on a
//   shared machine).
// - affinity: the server's threads on the last CPU, the suite on the first
//   (taskset), so client and server do not take turns on one CPU.
// - pretouch: touch (2 x file size, at most 1 GiB) of fresh memory just
//   before the upload: this machine's host takes freed memory back about 2 s
//   after it is freed, and the first touch of memory it took back is slow.
// - warm-upload: a small unmeasured upload to the same server first
//   (`warm` does it), so the measured one meets a warm server.
import os from 'node:os';
import { $ } from 'zx';

export const NOISE_CUTS = ['sync', 'drop-caches', 'affinity', 'pretouch', 'warm-upload'] as const;
export type NoiseCut = (typeof NOISE_CUTS)[number];

/** The defaults: what lowered the A/A spread here (README's noise table). */
export const DEFAULT_NOISE_CUTS: NoiseCut[] = [];

/** "sync,pretouch" or "none" -> the list; an unknown name throws, naming the known ones. */
export function parseNoiseCuts(text: string): NoiseCut[] {
  const t = text.trim();
  if (t === 'none') return [];
  const items = t.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new Error('empty list (give names, or none)');
  for (const i of items) {
    if (!(NOISE_CUTS as readonly string[]).includes(i)) throw new Error(`unknown noise cut "${i}" (known: ${NOISE_CUTS.join(', ')}, or none)`);
  }
  return [...new Set(items)] as NoiseCut[];
}

export interface NoiseCutContext {
  /** The server's pid on this host (local provider), for affinity; null elsewhere. */
  serverPid: number | null;
  fileBytes: number;
  /** The unmeasured small upload, for warm-upload. */
  warm: () => Promise<void>;
}

const quiet = $({ quiet: true, nothrow: true });

/** Applies the cuts in a fixed order (the upload right after); returns the seconds they took. */
export async function applyNoiseCuts(cuts: readonly NoiseCut[], ctx: NoiseCutContext): Promise<number> {
  if (cuts.length === 0) return 0;
  const t0 = performance.now();
  if (cuts.includes('warm-upload')) await ctx.warm();
  if (cuts.includes('affinity') && ctx.serverPid !== null) {
    const last = os.availableParallelism() - 1;
    if (last > 0) {
      await quiet`taskset -a -p -c ${last} ${ctx.serverPid}`;
      await quiet`taskset -a -p -c 0 ${process.pid}`;
    }
  }
  if (cuts.includes('sync') || cuts.includes('drop-caches')) await quiet`sync`;
  if (cuts.includes('drop-caches')) await quiet`sh -c ${'echo 3 > /proc/sys/vm/drop_caches'}`;
  if (cuts.includes('pretouch')) {
    const bytes = Math.min(2 * ctx.fileBytes, 2 ** 30);
    // dd reads zeros into one buffer of `bytes`: every page of it touched, then freed as it exits.
    await quiet`dd if=/dev/zero of=/dev/null bs=${bytes} count=1`;
  }
  return (performance.now() - t0) / 1000;
}
