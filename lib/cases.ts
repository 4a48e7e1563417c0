// The case: one (file size, memory limit, uploads at once) of a run, and the
// one owner of its identity. Its key, its labels and its order are made here
// and nowhere else: the plan, the shards, adaptive rounds, resume, merge,
// history, the canary, report.md and compare-runs all ask this module.
// report.md, its chart and compare-runs split a case's rows here too, so
// "measured" means the same thing everywhere: iterations after warm-up, and of
// those only successes feed medians. An iteration of N uploads at once is one
// aggregate row (iterationRows): the slowest upload's duration, the aggregate
// throughput.
//
//   caseKey(row) === caseKey(planEntry)            // "1048576@512", "1048576@512x4"
//   for (const rows of groupCases(run.rows).values()) caseSide(rows, run.config).successes
import type { RawRow } from './row.ts';
import { cvPct, max, median } from './stats/stats.ts';

/** A case's identity. */
export interface CaseId { bytes: number; memoryMb: number; concurrency: number }

/** A raw.csv row, or anything shaped like its case columns. */
type RowCase = Pick<RawRow, 'file_size_bytes' | 'memory_limit_mb' | 'concurrency'>;
/** An entry of the plan (matrix.ts Case): concurrency absent means one upload at a time. */
type PlanCase = { size: { bytes: number }; memoryMb: number; concurrency?: number };

/** The case a row, a plan entry or an identity belongs to. */
export function caseOf(x: RowCase | PlanCase | CaseId): CaseId {
  if ('file_size_bytes' in x) return { bytes: x.file_size_bytes, memoryMb: x.memory_limit_mb, concurrency: x.concurrency };
  if ('size' in x) return { bytes: x.size.bytes, memoryMb: x.memoryMb, concurrency: x.concurrency ?? 1 };
  return x;
}

/**
 * The case's key, as config.json (shard.cases, ab.stops) records it: `<bytes>@<MB>`, with `x<N>` for N
 * uploads at once (one at a time has no suffix, so records from before concurrency still match).
 */
export function caseKey(x: RowCase | PlanCase | CaseId): string {
  const c = caseOf(x);
  return `${c.bytes}@${c.memoryMb}${c.concurrency > 1 ? `x${c.concurrency}` : ''}`;
}

/** A key back to its case; null when it is not one. */
export function parseCaseKey(key: string): CaseId | null {
  const m = /^(\d+)@(\d+)(?:x(\d+))?$/.exec(key);
  return m ? { bytes: Number(m[1]), memoryMb: Number(m[2]), concurrency: m[3] ? Number(m[3]) : 1 } : null;
}

/** The key of an iteration of a case: one row per upload of it (raw.csv, resume). */
export function iterationKey(x: (RowCase & { iteration: number }) | (PlanCase & { iteration: number })): string {
  return `${caseKey(x)}/${x.iteration}`;
}

/** The order cases run and report.md lists them in: memory limit largest first, then size largest first, then uploads at once. */
export function byRunOrder(a: CaseId, b: CaseId): number {
  return b.memoryMb - a.memoryMb || b.bytes - a.bytes || a.concurrency - b.concurrency;
}

/** compare-runs' order: memory limit smallest first, then size, then uploads at once. */
export function byAscending(a: CaseId, b: CaseId): number {
  return a.memoryMb - b.memoryMb || a.bytes - b.bytes || a.concurrency - b.concurrency;
}

/** "64MiB", or "64MiB ×4" for four uploads at once: how a case's size is named in reports. */
export function caseSizeLabel(r: Pick<RawRow, 'file_size' | 'concurrency'>): string {
  return r.concurrency > 1 ? `${r.file_size} ×${r.concurrency}` : r.file_size;
}

/** "64MiB ×4 @ 512MB": a case in history and merge messages. */
export function caseLabel(sizeLabel: string, c: Pick<CaseId, 'memoryMb' | 'concurrency'>): string {
  return `${caseSizeLabel({ file_size: sizeLabel, concurrency: c.concurrency })} @ ${c.memoryMb}MB`;
}

/** "512MB 64MiB x4": a case on the progress line and in canary.csv's before_case. */
export function caseRunLabel(sizeLabel: string, c: Pick<CaseId, 'memoryMb' | 'concurrency'>): string {
  return `${c.memoryMb}MB ${sizeLabel}${c.concurrency > 1 ? ` x${c.concurrency}` : ''}`;
}

/** Every case of a matrix, in run order. */
export function matrixCases(m: { sizes: { bytes: number }[]; memoryLimitsMb: number[]; concurrency: number[] }): CaseId[] {
  return m.memoryLimitsMb.flatMap((memoryMb) => m.sizes.flatMap((s) => m.concurrency.map((concurrency) => ({ bytes: s.bytes, memoryMb, concurrency }))))
    .sort(byRunOrder);
}

/** How many leading iterations of a case are warm-up: config's value, else 1 when the case has more than 1. */
export function warmupFor(config: { matrix: { warmup_iterations: number } } | null, iterationsInCase: number): number {
  const w = config?.matrix.warmup_iterations;
  if (typeof w === 'number') return w;
  return iterationsInCase > 1 ? 1 : 0;
}

/** A memory-floor search's identity: the case without its memory limit, which the search varies (lib/stats/floor.ts). */
export function searchKey(r: Pick<RawRow, 'file_size_bytes' | 'concurrency'>): string {
  return caseKey({ bytes: r.file_size_bytes, memoryMb: 0, concurrency: r.concurrency });
}

/** Rows grouped by (file_size_bytes, memory_limit_mb, concurrency), in first-seen order. */
export function groupCases(rows: readonly RawRow[]): Map<string, RawRow[]> {
  const m = new Map<string, RawRow[]>();
  for (const r of rows) {
    const k = caseKey(r);
    const list = m.get(k);
    if (list) list.push(r);
    else m.set(k, [r]);
  }
  return m;
}

export interface CaseSide {
  rows: RawRow[];
  /** Iterations after warm-up. */
  measured: RawRow[];
  /** Measured and successful: the only rows that feed medians. */
  successes: RawRow[];
  /** Failed iterations, warm-up included (a failure is a failure). */
  failures: RawRow[];
}

export function caseSide(uploadRows: RawRow[], config: { matrix: { warmup_iterations: number } } | null): CaseSide {
  const rows = iterationRows(uploadRows);
  const warmup = warmupFor(config, new Set(rows.map((r) => r.iteration)).size);
  const measured = rows.filter((r) => r.iteration > warmup);
  return {
    rows,
    measured,
    successes: measured.filter((r) => r.exit_reason === 'success'),
    failures: rows.filter((r) => r.exit_reason !== 'success'),
  };
}

/**
 * One row per iteration of a case: its own row for one upload at a time; for N at once, the aggregate:
 * the slowest upload's duration (and transfer, processing), throughput N x size over it, the first
 * failure's exit reason and error (naming how many of N failed), sha256_ok only when every download
 * matched, the median download. The server-wide figures (memory, CPU, writes, data folder) are the
 * same on every row of an iteration. Pure.
 */
export function iterationRows(rows: readonly RawRow[]): RawRow[] {
  const byIteration = new Map<number, RawRow[]>();
  for (const r of rows) byIteration.set(r.iteration, [...(byIteration.get(r.iteration) ?? []), r]);
  return [...byIteration.values()].map((g) => {
    if (g.length === 1) return g[0];
    const failed = g.filter((r) => r.exit_reason !== 'success');
    const slowest = Math.max(...g.map((r) => r.duration_seconds));
    const maxOf = (k: 'transfer_seconds' | 'processing_seconds' | 'peak_memory_bytes' | 'server_peak_rss_bytes' | 'iteration_peak_rss_bytes') => {
      const xs = g.map((r) => r[k]).filter((x): x is number => x !== null);
      return xs.length ? Math.max(...xs) : null;
    };
    const medianOf = (k: 'download_mib_s' | 'download_ttfb_seconds') => {
      const xs = g.map((r) => r[k]).filter((x): x is number => x !== null);
      return xs.length ? median(xs) : null;
    };
    const reasons = [...new Set(failed.map((r) => r.exit_reason))].join(', ');
    return {
      ...g[0],
      duration_seconds: slowest,
      transfer_seconds: maxOf('transfer_seconds'),
      processing_seconds: maxOf('processing_seconds'),
      peak_memory_bytes: maxOf('peak_memory_bytes'),
      server_peak_rss_bytes: maxOf('server_peak_rss_bytes'),
      iteration_peak_rss_bytes: maxOf('iteration_peak_rss_bytes'),
      exit_reason: failed[0]?.exit_reason ?? 'success',
      error: failed.length ? `${failed.length} of ${g.length} uploads failed (${reasons}): ${failed[0].error}` : '',
      throughput_mib_s: failed.length === 0 && slowest > 0 ? (g.length * g[0].file_size_bytes) / 2 ** 20 / slowest : null,
      sha256_ok: g.every((r) => r.sha256_ok === true) ? true : g.some((r) => r.sha256_ok === false) ? false : null,
      download_mib_s: medianOf('download_mib_s'),
      download_ttfb_seconds: medianOf('download_ttfb_seconds'),
    };
  });
}

/** Bytes uploaded in an iteration: the file once per upload started together. */
const uploadedBytes = (r: RawRow) => r.file_size_bytes * r.concurrency;

/** Server CPU seconds (user + system) per GiB uploaded; null without both counters. */
export function cpuSecondsPerGiB(r: RawRow): number | null {
  if (r.server_cpu_user_seconds === null || r.server_cpu_system_seconds === null) return null;
  return (r.server_cpu_user_seconds + r.server_cpu_system_seconds) / (uploadedBytes(r) / 2 ** 30);
}

/** Bytes the server wrote to storage per byte uploaded (2 for a spool then a store of the same bytes). */
export function writeAmplification(r: RawRow): number | null {
  return r.server_write_bytes === null ? null : r.server_write_bytes / uploadedBytes(r);
}

/** The data folder's size after the upload per byte uploaded. */
export function spaceAmplification(r: RawRow): number | null {
  return r.data_dir_bytes === null ? null : r.data_dir_bytes / uploadedBytes(r);
}

/** The row the stopping rule records for one job's rows: the iteration's aggregate (N uploads at once: iterationRows), as compare-runs judges it. */
export function ruleRow(rows: readonly RawRow[]): RawRow {
  return iterationRows(rows)[0];
}

/** Throughput of a row, derived from size and duration when the column is empty (older or hand-made raw.csv). */
export function throughputOf(r: RawRow): number | null {
  if (r.throughput_mib_s === null && r.duration_seconds > 0) return r.file_size_bytes / 2 ** 20 / r.duration_seconds;
  return r.throughput_mib_s;
}

export interface CaseSummary {
  memoryMb: number;
  sizeBytes: number;
  fileSize: string;
  memoryLimit: string;
  runs: number;
  measured: number;
  medianDurationSeconds: number | null;
  medianThroughputMiBs: number | null;
  throughputCvPct: number | null;
  medianProcessingSeconds: number | null;
  peakMemoryBytes: number | null;
  serverPeakRssBytes: number | null;
  /** The largest server peak RSS over an upload and its verification download (absent from older raw.csv files). */
  iterationPeakRssBytes: number | null;
  /** Median share of upload time a host task waited for a CPU. */
  medianCpuPressurePct: number | null;
  failures: Record<string, number>;
  /** The first failed iteration's error line, for the case's row. */
  firstError: string | null;
  /** Uploads started together; throughput and duration above are the iteration's aggregate and slowest. */
  concurrency: number;
  medianCpuSecondsPerGiB: number | null;
  cpuCvPct: number | null;
  medianWriteAmplification: number | null;
  writeCvPct: number | null;
  medianSpaceAmplification: number | null;
  medianDownloadMiBs: number | null;
  medianDownloadTtfbSeconds: number | null;
}

/** Each case's measured iterations (lib/cases.ts) summarised, memory largest first, then size largest first. */
export function summarizeCases(rows: RawRow[], config: { matrix: { warmup_iterations: number } } | null): CaseSummary[] {
  const nums = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null && Number.isFinite(x));
  const medianOf = (xs: (number | null)[]) => (nums(xs).length ? median(nums(xs)) : null);
  return [...groupCases(rows).values()]
    .map((g) => {
      const { rows: iterations, successes: measured, failures: failed } = caseSide(g, config);
      const cpu = nums(measured.map(cpuSecondsPerGiB));
      const writes = nums(measured.map(writeAmplification));
      const failures: Record<string, number> = {};
      for (const r of failed) {
        const k = r.failure_phase ? `${r.exit_reason} (${r.failure_phase})` : r.exit_reason;
        failures[k] = (failures[k] ?? 0) + 1;
      }
      const thr = nums(measured.map(throughputOf));
      const peaks = nums(g.map((r) => r.peak_memory_bytes));
      const rss = nums(g.map((r) => r.server_peak_rss_bytes));
      const rssWithDownload = nums(g.map((r) => r.iteration_peak_rss_bytes));
      return {
        memoryMb: g[0].memory_limit_mb, sizeBytes: g[0].file_size_bytes,
        fileSize: caseSizeLabel(g[0]), memoryLimit: g[0].memory_limit,
        runs: iterations.length, measured: measured.length,
        medianDurationSeconds: medianOf(measured.map((r) => r.duration_seconds)),
        medianThroughputMiBs: thr.length ? median(thr) : null,
        throughputCvPct: thr.length > 1 ? cvPct(thr) : null,
        medianProcessingSeconds: medianOf(measured.map((r) => r.processing_seconds)),
        peakMemoryBytes: peaks.length ? max(peaks) : null,
        serverPeakRssBytes: rss.length ? max(rss) : null,
        iterationPeakRssBytes: rssWithDownload.length ? max(rssWithDownload) : null,
        medianCpuPressurePct: medianOf(measured.map((r) => r.host_cpu_pressure_pct)),
        failures,
        firstError: failed.length ? `#${failed[0].iteration}: ${failed[0].error}` : null,
        concurrency: g[0].concurrency,
        medianCpuSecondsPerGiB: cpu.length ? median(cpu) : null,
        cpuCvPct: cpu.length > 1 ? cvPct(cpu) : null,
        medianWriteAmplification: writes.length ? median(writes) : null,
        writeCvPct: writes.length > 1 ? cvPct(writes) : null,
        medianSpaceAmplification: medianOf(measured.map(spaceAmplification)),
        medianDownloadMiBs: medianOf(measured.map((r) => r.download_mib_s)),
        medianDownloadTtfbSeconds: medianOf(measured.map((r) => r.download_ttfb_seconds)),
      };
    })
    .sort((a, b) => byRunOrder({ bytes: a.sizeBytes, ...a }, { bytes: b.sizeBytes, ...b }));
}
