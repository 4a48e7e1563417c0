// A case is one (file size, memory limit, concurrency) of a run. report.md,
// its chart and compare-runs all split a case's rows here, so "measured" means
// the same thing everywhere: iterations after warm-up, and of those only
// successes feed medians. An iteration of N uploads at once is one aggregate
// row (iterationRow): the slowest upload's duration, the aggregate throughput.
//
//   for (const rows of groupCases(run.rows).values()) caseSide(rows, run.config).successes
import type { RawRow } from './results.ts';
import { median } from './stats.ts';

/** How many leading iterations of a case are warm-up: config's value, else 1 when the case has more than 1. */
export function warmupFor(config: { matrix: { warmup_iterations: number } } | null, iterationsInCase: number): number {
  const w = config?.matrix.warmup_iterations;
  if (typeof w === 'number') return w;
  return iterationsInCase > 1 ? 1 : 0;
}

export function caseKey(r: Pick<RawRow, 'file_size_bytes' | 'memory_limit_mb' | 'concurrency'>): string {
  return `${r.file_size_bytes}@${r.memory_limit_mb}${r.concurrency > 1 ? `x${r.concurrency}` : ''}`;
}

/** A memory-floor search's identity: the case without its memory limit, which the search varies (lib/floor.ts). */
export function searchKey(r: Pick<RawRow, 'file_size_bytes' | 'concurrency'>): string {
  return caseKey({ ...r, memory_limit_mb: 0 });
}

/** "64MiB", or "64MiB ×4" for four uploads at once: how a case's size is named in reports. */
export function caseSizeLabel(r: Pick<RawRow, 'file_size' | 'concurrency'>): string {
  return r.concurrency > 1 ? `${r.file_size} ×${r.concurrency}` : r.file_size;
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
    const maxOf = (k: 'transfer_seconds' | 'processing_seconds' | 'peak_memory_bytes' | 'server_peak_rss_bytes') => {
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

/** Throughput of a row, derived from size and duration when the column is empty (older or hand-made raw.csv). */
export function throughputOf(r: RawRow): number | null {
  if (r.throughput_mib_s === null && r.duration_seconds > 0) return r.file_size_bytes / 2 ** 20 / r.duration_seconds;
  return r.throughput_mib_s;
}
