// The raw.csv row: one table of its columns, in file order, each with its
// type, how a cell reads, and what a new row holds before it is measured. The
// row type, the header, the writer, the parser of one line and the empty row
// of an iteration all come from this table, so adding a column is one entry
// here (at the end: the columns are the contract with compare-runs and anyone
// plotting the data) plus its test. Units: bytes, seconds, MiB/s.
// Written by hand rather than with the schema library: a column is a CSV cell
// with its own wording for each bad value, and the table is also the writer.
//
//   const r = newRow(testCase, startedAt)          // every measured column empty
//   rawCsvLine({ ...r, duration_seconds: 1.2, exit_reason: 'success', ... })
//   parseRow(cells, header, 'raw.csv line 3')      // typed, or InputError naming the column
// Pure.
import Papa from 'papaparse';
import { InputError } from './errors.ts';

export const EXIT_REASONS = [
  'success', 'timeout', 'http_error', 'process_died', 'oom_killed', 'integrity_error',
  'not_ready', // the server never answered GET / 200: a startup failure, not an upload one
  'vm_failed', // the environment (VM) could not be brought up for this memory limit
] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

/**
 * Where in an iteration a failure happened: the server's start (readiness, authentication, or its
 * environment), the upload (body bytes still to send), processing (all sent, no answer yet), or the
 * verification after a 200 (download and delete). An OOM kill in any of them is a failure to survive.
 */
export const FAILURE_PHASES = ['start', 'upload', 'processing', 'verification'] as const;
export type FailurePhase = (typeof FAILURE_PHASES)[number];

/** How one column reads from a cell (trimmed); `bad` makes the error naming the column and the cell. */
interface Column<T> {
  read(cell: string, bad: (why: string) => InputError): T;
  /** What a file from before the column was added reads as. */
  absent?: T;
}

const text: Column<string> = { read: (v) => v };
const number = (o: { positive?: boolean } = {}): Column<number> => ({
  read: (v, bad) => {
    const n = Number(v);
    if (v === '' || !Number.isFinite(n)) throw bad('is not a number');
    if (n < 0) throw bad('is negative');
    if (o.positive && n === 0) throw bad('must be above 0');
    return n;
  },
});
/** A figure that may be missing: empty when it was not measured (or does not apply). */
const measured = (o: { positive?: boolean } = {}): Column<number | null> => ({
  read: (v, bad) => (v === '' ? null : (o.positive && Number(v) === 0 ? (() => { throw bad('must be above 0 (or empty)'); })() : number().read(v, bad))),
  absent: null,
});
const oneOf = <T extends string>(values: readonly T[]): Column<T> => ({
  read: (v, bad) => {
    if (!(values as readonly string[]).includes(v)) throw bad(`is not one of ${values.join(', ')}`);
    return v as T;
  },
});
const oneOfOrEmpty = <T extends string>(values: readonly T[]): Column<T | null> => ({
  read: (v, bad) => {
    if (v === '') return null;
    if (!(values as readonly string[]).includes(v)) throw bad(`is not one of ${values.join(', ')} or empty`);
    return v as T;
  },
  absent: null,
});
const flag: Column<boolean | null> = {
  read: (v, bad) => {
    if (v !== '' && v !== 'true' && v !== 'false') throw bad('is not true, false or empty');
    return v === '' ? null : v === 'true';
  },
  absent: null,
};

/** The columns, in order: the seed's six first, then ours. Add new ones at the end. */
const COLUMNS = {
  file_size: text,                                 // label as in the matrix, e.g. 100MiB
  memory_limit: text,                              // label, e.g. 256MB
  duration_seconds: number(),                      // request start to response end (or to failure)
  peak_memory_bytes: measured(),                   // environment peak: VM MemTotal-MemAvailable, local cgroup peak
  http_status: measured(),                         // upload response status; empty when none came
  exit_reason: oneOf(EXIT_REASONS),
  iteration: number({ positive: true }),           // 1-based within the case
  file_size_bytes: number({ positive: true }),
  memory_limit_mb: number({ positive: true }),
  transfer_seconds: measured(),                    // request start to last body byte sent
  processing_seconds: measured(),                  // last byte sent to response headers
  throughput_mib_s: measured({ positive: true }),  // file_size_bytes / 2^20 / duration_seconds; empty unless success
  server_peak_rss_bytes: measured(),               // the server process's VmHWM
  sha256_ok: flag,                                 // the download matched; empty when no download was made
  started_at: text,                                // ISO time the iteration started
  error: text,                                     // one-line detail for failures; the rest is in failures.log
  host_cpu_pressure_pct: measured(),               // share of the upload's wall time some host task waited for a CPU (/proc/pressure/cpu); empty where PSI is off
  failure_phase: oneOfOrEmpty(FAILURE_PHASES),     // empty for a success
  // What the server spent (lib/providers/spend.ts), from the server process's /proc, inside the VM for VM providers.
  // Server-wide over the iteration: with concurrency N, the same figures on each of its N rows, for all N uploads.
  server_cpu_user_seconds: measured(),             // user CPU seconds of the server (and its waited-for children) from upload start to response
  server_cpu_system_seconds: measured(),           // system CPU seconds, same window
  server_write_bytes: measured(),                  // bytes the server sent to storage in that window (/proc/PID/io write_bytes), spool included
  data_dir_bytes: measured(),                      // disk space of the server's data folder (store + spool folder) after the response
  download_ttfb_seconds: measured(),               // verification download: request to first body byte
  download_mib_s: measured(),                      // verification download: bytes / 2^20 / seconds from request to last byte
  concurrency: { read: (v, bad) => (v === '' ? 1 : number({ positive: true }).read(v, bad)), absent: 1 } as Column<number>, // uploads of the case started together; files from before it: 1
  iteration_peak_rss_bytes: measured(),            // the server's peak RSS over the upload and its verification download (server_peak_rss_bytes stops at the response)
};

type Value<C> = C extends Column<infer T> ? T : never;
export type RawRow = { [K in keyof typeof COLUMNS]: Value<(typeof COLUMNS)[K]> };
export type RawColumn = keyof typeof COLUMNS;
export const RAW_COLUMNS = Object.keys(COLUMNS) as RawColumn[];
/** Columns every schema-1 raw.csv has; later columns were appended since and may be absent from older files. */
export const RAW_MIN_COLUMNS = 16;

/** What a row holds before its iteration is measured: the case and iteration, every figure empty. */
export type MeasuredColumns = Exclude<RawColumn, 'file_size' | 'memory_limit' | 'iteration' | 'file_size_bytes' | 'memory_limit_mb' | 'concurrency' | 'started_at'>;

/** The row of an iteration of a case before anything is measured: identity filled, figures empty (null), no error. */
export function newRow(c: { size: { label: string; bytes: number }; memoryMb: number; concurrency?: number; iteration: number }, startedAt: string): RawRow {
  const empty = Object.fromEntries(RAW_COLUMNS.map((k) => [k, COLUMNS[k].absent ?? null])) as Record<MeasuredColumns, null>;
  return {
    ...empty, duration_seconds: 0, exit_reason: 'success', error: '', sha256_ok: null,
    file_size: c.size.label, memory_limit: `${c.memoryMb}MB`, iteration: c.iteration,
    file_size_bytes: c.size.bytes, memory_limit_mb: c.memoryMb, concurrency: c.concurrency ?? 1, started_at: startedAt,
  };
}

/** One raw.csv line (no header) for a row, quoted where needed. */
export function rawCsvLine(row: RawRow): string {
  const cells = RAW_COLUMNS.map((c) => {
    const v = row[c];
    return v === null || v === undefined ? '' : String(v);
  });
  return Papa.unparse([cells], { header: false, newline: '\n' }) + '\n';
}

export function rawCsvHeader(): string {
  return RAW_COLUMNS.join(',') + '\n';
}

/** One line's cells under `header` as a typed row; `where` names the file and line in messages. */
export function parseRow(fields: string[], header: string[], where: string): RawRow {
  if (fields.length < header.length) {
    throw new InputError(`${where}: ${fields.length} of ${header.length} columns (truncated or malformed row)`);
  }
  const row: Record<string, unknown> = {};
  for (const c of RAW_COLUMNS) {
    const col: Column<unknown> = COLUMNS[c];
    const i = header.indexOf(c);
    if (i < 0 && 'absent' in col) { row[c] = col.absent; continue; }
    const v = i < 0 ? '' : fields[i].trim();
    row[c] = col.read(v, (why) => new InputError(`${where}, column ${c}: ${JSON.stringify(v)} ${why}`));
  }
  const r = row as RawRow;
  if (r.exit_reason === 'success' && r.duration_seconds === 0) {
    throw new InputError(`${where}, column duration_seconds: "${fields[header.indexOf('duration_seconds')].trim()}" must be above 0 for a success`);
  }
  return r;
}
