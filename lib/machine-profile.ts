// This machine's speeds and noise as the last run of two servers measured
// them (not runs inside the test runner), kept in the cache folder, so the next run's plan (lib/stats/plan.ts) can say
// how long it will take here. One profile per server (profileKey): the stand-in is about twice as fast as
// PicoShare, and a PicoShare plan made from the stand-in's last run said 69 s a round for 149.
//
//   const key = profileKey(run.sides[0].record.server)   // "standin", "source picoshare", "binary picoshare"
//   const p = readMachineProfile(key) ?? DEFAULT_PROFILE   // that server's last measured, or the defaults
//   const next = profileFromRun(sideRows, jobSeconds, dir)  // null when the run measured too little
//   if (next) writeMachineProfile(key, next)
import fs from 'node:fs';
import path from 'node:path';
import { caseSide, groupCases, throughputOf } from './cases.ts';
import { cacheDir } from './paths.ts';
import type { MachineProfile } from './stats/plan.ts';
import type { RawRow } from './results.ts';
import type { ServerRecord } from './run-record.ts';
import { median } from './stats/stats.ts';
import { sd } from './stats/verdict.ts';

const mibOf = (r: RawRow) => (r.file_size_bytes * r.concurrency) / 2 ** 20;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const file = () => path.join(cacheDir(), 'machine-profile.json');

/** The server a profile belongs to: the stand-in, or a binary's or a checkout's name ("source picoshare"). */
export function profileKey(server: Pick<ServerRecord, 'kind' | 'path'>): string {
  return server.kind === 'standin' || !server.path ? 'standin' : `${server.kind} ${path.basename(server.path)}`;
}

/** Every server's profile, by profileKey; empty when there is no file or it cannot be read (older files held one bare profile). */
function readAll(): Record<string, unknown> {
  try {
    const all = JSON.parse(fs.readFileSync(file(), 'utf8')) as unknown;
    return all && typeof all === 'object' && !('upload_mib_s' in all) ? (all as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The profile the last run of this server wrote; null when there is none or it cannot be read (plans then use DEFAULT_PROFILE). */
export function readMachineProfile(key: string): MachineProfile | null {
  const p = readAll()[key];
  if (!p || typeof p !== 'object') return null;
  const ok = ['upload_mib_s', 'download_mib_s', 'job_overhead_seconds', 'paired_sd_pct'].every((k) => {
    const v = (p as Record<string, unknown>)[k];
    return typeof v === 'number' && Number.isFinite(v) && v >= 0;
  });
  const profile = p as MachineProfile;
  if (!(ok && profile.upload_mib_s > 0 && profile.download_mib_s > 0)) return null;
  // Per-size SDs are a refinement: a map that is not one of positive numbers is dropped, not the profile.
  const sized = (m: unknown) => !!m && typeof m === 'object' && Object.values(m).every((v) => (Array.isArray(v) ? v : [v]).every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0));
  if (!sized(profile.paired_sd_pct_by_size) || !sized(profile.recent_paired_sd_pct_by_size)) {
    const { paired_sd_pct_by_size: _a, recent_paired_sd_pct_by_size: _b, ...rest } = profile;
    return rest;
  }
  return profile;
}

export function writeMachineProfile(key: string, p: MachineProfile): void {
  fs.mkdirSync(cacheDir(), { recursive: true });
  const tmp = `${file()}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify({ ...readAll(), [key]: p }, null, 2)}\n`);
  fs.renameSync(tmp, file());
}

/**
 * The profile a run of two or more sides measured: upload and download
 * speeds of its successes (bytes over seconds), the median job's time beyond its upload and
 * download (`jobs`: each measured job's row and wall seconds), and the median over its cases of the per-round paired SD of the
 * throughput log ratio (first two sides), and the canary's CPU part as its plan timed it before the run (`canaryBefore`,
 * seconds). Not the canary between the run's rounds: that ran 1.5x slower (median 0.063 s against 0.043 s before the
 * run), so a plan on an idle machine scaled the next run's times by 0.67. null with fewer than 4 paired rounds.
 */
export function profileFromRun(sides: RawRow[][], jobs: { row: RawRow; seconds: number }[], source: string, canaryBefore: number | null = null): MachineProfile | null {
  const ok = sides.flat().filter((r) => r.exit_reason === 'success' && r.throughput_mib_s !== null && r.download_mib_s !== null);
  const timed = jobs.filter((j) => ok.includes(j.row));
  if (ok.length === 0 || timed.length === 0 || sides.length < 2) return null;
  const sds: number[] = [];
  const bySize = new Map<number, number[]>();
  const other = groupCases(sides[1]);
  for (const [k, rows] of groupCases(sides[0])) {
    const a = new Map(caseSide(rows, null).successes.map((r) => [r.iteration, throughputOf(r)!]));
    const b = caseSide(other.get(k) ?? [], null).successes.filter((r) => a.has(r.iteration));
    if (b.length < 4) continue;
    const x = sd(b.map((r) => Math.log(throughputOf(r)! / a.get(r.iteration)!)));
    sds.push(x);
    bySize.set(rows[0].file_size_bytes, [...(bySize.get(rows[0].file_size_bytes) ?? []), x]);
  }
  if (sds.length === 0) return null;
  const busy = (r: RawRow) => r.duration_seconds + (r.file_size_bytes * r.concurrency) / 2 ** 20 / r.download_mib_s!;
  return {
    // Bytes over seconds, summed: the large files, which take the time, set the pace.
    upload_mib_s: sum(ok.map(mibOf)) / sum(ok.map((r) => r.duration_seconds)),
    download_mib_s: sum(ok.map(mibOf)) / sum(ok.map((r) => mibOf(r) / r.download_mib_s!)),
    job_overhead_seconds: Math.max(0, median(timed.map((j) => j.seconds - busy(j.row)))),
    paired_sd_pct: (Math.exp(median(sds)) - 1) * 100,
    paired_sd_pct_by_size: Object.fromEntries([...bySize].map(([bytes, xs]) => [String(bytes), (Math.exp(median(xs)) - 1) * 100])),
    ...(canaryBefore ? { canary_cpu_seconds: canaryBefore } : {}),
    source: `${source} (${new Date().toISOString().slice(0, 16)}Z)`,
  };
}
