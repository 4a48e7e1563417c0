// A case is one (file size, memory limit) of a run. report.md, its chart and
// compare-runs all split a case's rows here, so "measured" means the same
// thing everywhere: iterations after warm-up, and of those only successes
// feed medians.
//
//   for (const rows of groupCases(run.rows).values()) caseSide(rows, run.config).successes
import type { RawRow } from './results.ts';

/** How many leading iterations of a case are warm-up: config's value, else 1 when the case has more than 1. */
export function warmupFor(config: { matrix: { warmup_iterations: number } } | null, iterationsInCase: number): number {
  const w = config?.matrix.warmup_iterations;
  if (typeof w === 'number') return w;
  return iterationsInCase > 1 ? 1 : 0;
}

export function caseKey(r: Pick<RawRow, 'file_size_bytes' | 'memory_limit_mb'>): string {
  return `${r.file_size_bytes}@${r.memory_limit_mb}`;
}

/** Rows grouped by (file_size_bytes, memory_limit_mb), in first-seen order. */
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

export function caseSide(rows: RawRow[], config: { matrix: { warmup_iterations: number } } | null): CaseSide {
  const warmup = warmupFor(config, new Set(rows.map((r) => r.iteration)).size);
  const measured = rows.filter((r) => r.iteration > warmup);
  return {
    rows,
    measured,
    successes: measured.filter((r) => r.exit_reason === 'success'),
    failures: rows.filter((r) => r.exit_reason !== 'success'),
  };
}

/** Throughput of a row, derived from size and duration when the column is empty (older or hand-made raw.csv). */
export function throughputOf(r: RawRow): number | null {
  if (r.throughput_mib_s === null && r.duration_seconds > 0) return r.file_size_bytes / 2 ** 20 / r.duration_seconds;
  return r.throughput_mib_s;
}
