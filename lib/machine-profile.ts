// This machine's speeds and noise as the last run of two servers measured
// them (not runs inside the test runner), kept in the cache folder, so the next run's plan (lib/stats/plan.ts) can say
// how long it will take here.
//
//   const p = readMachineProfile() ?? DEFAULT_PROFILE   // the last measured, or the defaults
//   const next = profileFromRun(sideRows, jobSeconds, dir)  // null when the run measured too little
//   if (next) writeMachineProfile(next)
import fs from 'node:fs';
import path from 'node:path';
import { caseSide, groupCases, throughputOf } from './cases.ts';
import { cacheDir } from './paths.ts';
import type { MachineProfile } from './stats/plan.ts';
import type { RawRow } from './results.ts';
import { median } from './stats/stats.ts';
import { sd } from './stats/verdict.ts';

const mibOf = (r: RawRow) => (r.file_size_bytes * r.concurrency) / 2 ** 20;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const file = () => path.join(cacheDir(), 'machine-profile.json');

/** The profile the last run wrote; null when there is none or it cannot be read (plans then use DEFAULT_PROFILE). */
export function readMachineProfile(): MachineProfile | null {
  try {
    const p = JSON.parse(fs.readFileSync(file(), 'utf8')) as MachineProfile;
    const ok = ['upload_mib_s', 'download_mib_s', 'job_overhead_seconds', 'paired_sd_pct'].every((k) => {
      const v = (p as unknown as Record<string, unknown>)[k];
      return typeof v === 'number' && Number.isFinite(v) && v >= 0;
    });
    return ok && p.upload_mib_s > 0 && p.download_mib_s > 0 ? p : null;
  } catch {
    return null;
  }
}

export function writeMachineProfile(p: MachineProfile): void {
  fs.mkdirSync(cacheDir(), { recursive: true });
  const tmp = `${file()}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(p, null, 2)}\n`);
  fs.renameSync(tmp, file());
}

/**
 * The profile a run of two or more sides measured: upload and download
 * speeds of its successes (bytes over seconds), the median job's time beyond its upload and
 * download (`jobs`: each measured job's row and wall seconds), and the median over its cases of the per-round paired SD of the
 * throughput log ratio (first two sides), and the median of the canary's CPU part (`canaryCpu`, seconds) while it ran.
 * null with fewer than 4 paired rounds.
 */
export function profileFromRun(sides: RawRow[][], jobs: { row: RawRow; seconds: number }[], source: string, canaryCpu: number[] = []): MachineProfile | null {
  const ok = sides.flat().filter((r) => r.exit_reason === 'success' && r.throughput_mib_s !== null && r.download_mib_s !== null);
  const timed = jobs.filter((j) => ok.includes(j.row));
  if (ok.length === 0 || timed.length === 0 || sides.length < 2) return null;
  const sds: number[] = [];
  const other = groupCases(sides[1]);
  for (const [k, rows] of groupCases(sides[0])) {
    const a = new Map(caseSide(rows, null).successes.map((r) => [r.iteration, throughputOf(r)!]));
    const b = caseSide(other.get(k) ?? [], null).successes.filter((r) => a.has(r.iteration));
    if (b.length >= 4) sds.push(sd(b.map((r) => Math.log(throughputOf(r)! / a.get(r.iteration)!))));
  }
  if (sds.length === 0) return null;
  const busy = (r: RawRow) => r.duration_seconds + (r.file_size_bytes * r.concurrency) / 2 ** 20 / r.download_mib_s!;
  return {
    // Bytes over seconds, summed: the large files, which take the time, set the pace.
    upload_mib_s: sum(ok.map(mibOf)) / sum(ok.map((r) => r.duration_seconds)),
    download_mib_s: sum(ok.map(mibOf)) / sum(ok.map((r) => mibOf(r) / r.download_mib_s!)),
    job_overhead_seconds: Math.max(0, median(timed.map((j) => j.seconds - busy(j.row)))),
    paired_sd_pct: (Math.exp(median(sds)) - 1) * 100,
    ...(canaryCpu.length > 0 ? { canary_cpu_seconds: median(canaryCpu) } : {}),
    source: `${source} (${new Date().toISOString().slice(0, 16)}Z)`,
  };
}
