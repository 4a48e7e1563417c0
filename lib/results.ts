// The run folder's files: raw.csv (one row per iteration, appended as measured,
// and parsed back), failures.log, config.json. The columns below are the contract with
// compare-runs and anyone plotting the data; add columns at the end only.
import fs from 'node:fs';
import path from 'node:path';
import Papa from 'papaparse';
import { describeFsError, makeDirs } from './dirs.ts';
import { InputError } from './errors.ts';
import { lockRunDir } from './lock.ts';

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

/** raw.csv columns, in order: the seed's six first, then ours. Units: bytes, seconds, MiB/s. */
export const RAW_COLUMNS = [
  'file_size',             // label as in the matrix, e.g. 100MiB
  'memory_limit',          // label, e.g. 256MB
  'duration_seconds',      // request start to response end (or to failure)
  'peak_memory_bytes',     // environment peak: VM MemTotal-MemAvailable, local cgroup peak
  'http_status',           // upload response status; empty when none came
  'exit_reason',           // one of EXIT_REASONS
  'iteration',             // 1-based within the case
  'file_size_bytes',
  'memory_limit_mb',
  'transfer_seconds',      // request start to last body byte sent
  'processing_seconds',    // last byte sent to response headers
  'throughput_mib_s',      // file_size_bytes / 2^20 / duration_seconds; empty unless success
  'server_peak_rss_bytes', // the server process's VmHWM
  'sha256_ok',             // true/false; empty when no download was made
  'started_at',            // ISO time the iteration started
  'error',                 // one-line detail for failures; the rest is in failures.log
  'host_cpu_pressure_pct', // share of the upload's wall time some host task waited for a CPU (/proc/pressure/cpu); empty where PSI is off
  'failure_phase',         // one of FAILURE_PHASES for a failure; empty for a success
  // What the server spent (lib/spend.ts), from the server process's /proc, inside the VM for VM providers.
  // Server-wide over the iteration: with concurrency N, the same figures on each of its N rows, for all N uploads.
  'server_cpu_user_seconds',   // user CPU seconds of the server (and its waited-for children) from upload start to response
  'server_cpu_system_seconds', // system CPU seconds, same window
  'server_write_bytes',        // bytes the server sent to storage in that window (/proc/PID/io write_bytes), spool included
  'data_dir_bytes',            // disk space of the server's data folder (store + spool folder) after the response
  'download_ttfb_seconds',     // verification download: request to first body byte
  'download_mib_s',            // verification download: bytes / 2^20 / seconds from request to last byte
  'concurrency',               // uploads of the case started together (1 unless the matrix says so); absent = 1
] as const;
/** Columns every schema-1 raw.csv has; later columns were appended since and may be absent from older files. */
export const RAW_MIN_COLUMNS = 16;
export type RawColumn = (typeof RAW_COLUMNS)[number];

export interface RawRow {
  file_size: string;
  memory_limit: string;
  duration_seconds: number;
  peak_memory_bytes: number | null;
  http_status: number | null;
  exit_reason: ExitReason;
  iteration: number;
  file_size_bytes: number;
  memory_limit_mb: number;
  transfer_seconds: number | null;
  processing_seconds: number | null;
  throughput_mib_s: number | null;
  server_peak_rss_bytes: number | null;
  sha256_ok: boolean | null;
  started_at: string;
  error: string;
  host_cpu_pressure_pct: number | null;
  failure_phase: FailurePhase | null;
  server_cpu_user_seconds: number | null;
  server_cpu_system_seconds: number | null;
  server_write_bytes: number | null;
  data_dir_bytes: number | null;
  download_ttfb_seconds: number | null;
  download_mib_s: number | null;
  concurrency: number;
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

const REQUIRED_NUMBERS: RawColumn[] = ['duration_seconds', 'iteration', 'file_size_bytes', 'memory_limit_mb'];
const OPTIONAL_NUMBERS: RawColumn[] = [
  'peak_memory_bytes', 'http_status', 'transfer_seconds', 'processing_seconds', 'throughput_mib_s', 'server_peak_rss_bytes',
  'host_cpu_pressure_pct', 'server_cpu_user_seconds', 'server_cpu_system_seconds', 'server_write_bytes', 'data_dir_bytes',
  'download_ttfb_seconds', 'download_mib_s',
];

/** Parses raw.csv text into typed rows; `where` names the file in error messages. Pure. */
/**
 * raw.csv's text with a torn last line split off: a line without its newline
 * that is not a whole row (a run killed, or a disk filled, mid-append). A last
 * row with every column but no newline is whole: kept, its newline restored.
 * A line cut anywhere else is left for parseRawCsv to refuse. Pure.
 */
export function splitTornLastRow(text: string, where: string): { kept: string; torn: string | null } {
  if (text === '' || text.endsWith('\n')) return { kept: text, torn: null };
  const cut = text.lastIndexOf('\n') + 1;
  if (cut === 0) return { kept: text, torn: null }; // the header itself is cut: no row to leave out
  const header = text.slice(0, text.indexOf('\n') + 1);
  try {
    parseRawCsv(`${header}${text.slice(cut)}\n`, where);
    return { kept: `${text}\n`, torn: null };
  } catch {
    return { kept: text.slice(0, cut), torn: text.slice(cut) };
  }
}

export function parseRawCsv(text: string, where: string): RawRow[] {
  const parsed = Papa.parse<string[]>(text, { skipEmptyLines: true });
  const [header, ...records] = parsed.data;
  if (!header) throw new InputError(`${where}: empty file, no header line`);
  // The schema-1 columns in their places; columns appended since are found by name (older files lack them).
  const missing = RAW_COLUMNS.slice(0, RAW_MIN_COLUMNS).filter((c, i) => header[i] !== c);
  if (missing.length > 0) {
    throw new InputError(
      `${where}: unknown schema, header lacks ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''} ` +
        `at the expected position (columns must start with ${RAW_COLUMNS.slice(0, 3).join(',')},...)`,
    );
  }
  if (records.length === 0) throw new InputError(`${where}: no rows after the header`);
  // Papa reports unterminated quotes (a file cut off mid-field); field counts we check per row below.
  const quoteError = parsed.errors.find((e) => e.type === 'Quotes');
  if (quoteError) throw new InputError(`${where}: malformed CSV at row ${(quoteError.row ?? 0) + 1}: ${quoteError.message}`);
  const rows = records.map((fields, i) => parseRow(fields, header, `${where} line ${i + 2}`));
  // One row per (case, iteration), one per upload of a case of N at once: two runs writing one folder at once
  // doubled rows, which compare-runs took as data.
  const lines = new Map<string, number[]>();
  rows.forEach((r, i) => {
    const k = `${r.memory_limit_mb}/${r.file_size_bytes}/${r.concurrency}/${r.iteration}`;
    const seen = [...(lines.get(k) ?? []), i + 2];
    if (seen.length > r.concurrency) {
      const what = r.concurrency > 1
        ? `lines ${seen.join(', ')} are all ${r.memory_limit} ${r.file_size} x${r.concurrency} iteration ${r.iteration}, more than its ${r.concurrency} uploads`
        : `lines ${seen.join(' and ')} are both ${r.memory_limit} ${r.file_size} iteration ${r.iteration}`;
      throw new InputError(`${where}: ${what} (two runs wrote this folder at once?): keep one of them`);
    }
    lines.set(k, seen);
  });
  return rows;
}

function parseRow(fields: string[], header: string[], where: string): RawRow {
  if (fields.length < header.length) {
    throw new InputError(`${where}: ${fields.length} of ${header.length} columns (truncated or malformed row)`);
  }
  const cell = (c: RawColumn) => (header.includes(c) ? fields[header.indexOf(c)] : '').trim();
  const num = (c: RawColumn, required: boolean): number | null => {
    const v = cell(c);
    if (v === '' && !required) return null;
    const n = Number(v);
    if (v === '' || !Number.isFinite(n)) throw new InputError(`${where}, column ${c}: ${JSON.stringify(v)} is not a number`);
    return n;
  };
  const exitReason = cell('exit_reason');
  if (!(EXIT_REASONS as readonly string[]).includes(exitReason)) {
    throw new InputError(`${where}, column exit_reason: ${JSON.stringify(exitReason)} is not one of ${EXIT_REASONS.join(', ')}`);
  }
  const sha = cell('sha256_ok');
  if (sha !== '' && sha !== 'true' && sha !== 'false') {
    throw new InputError(`${where}, column sha256_ok: ${JSON.stringify(sha)} is not true, false or empty`);
  }
  const phase = cell('failure_phase');
  if (phase !== '' && !(FAILURE_PHASES as readonly string[]).includes(phase)) {
    throw new InputError(`${where}, column failure_phase: ${JSON.stringify(phase)} is not one of ${FAILURE_PHASES.join(', ')} or empty`);
  }
  const row = {
    file_size: cell('file_size'),
    memory_limit: cell('memory_limit'),
    exit_reason: exitReason as ExitReason,
    sha256_ok: sha === '' ? null : sha === 'true',
    started_at: cell('started_at'),
    error: cell('error'),
    failure_phase: phase === '' ? null : phase as FailurePhase,
  } as RawRow;
  for (const c of REQUIRED_NUMBERS) (row as unknown as Record<string, number | null>)[c] = num(c, true);
  for (const c of OPTIONAL_NUMBERS) (row as unknown as Record<string, number | null>)[c] = num(c, false);
  // Files from before uploads at once ran one at a time.
  row.concurrency = num('concurrency', false) ?? 1;
  // Out of range values were accepted and turned into medians such as "±2500%".
  const bad = (c: RawColumn, why: string) => new InputError(`${where}, column ${c}: ${JSON.stringify(cell(c))} ${why}`);
  for (const c of [...REQUIRED_NUMBERS, ...OPTIONAL_NUMBERS]) {
    const v = (row as unknown as Record<string, number | null>)[c];
    if (v !== null && v < 0) throw bad(c, 'is negative');
  }
  for (const c of ['iteration', 'file_size_bytes', 'memory_limit_mb'] as const) if (row[c] <= 0) throw bad(c, 'must be above 0');
  if (row.throughput_mib_s === 0) throw bad('throughput_mib_s', 'must be above 0 (or empty)');
  if (exitReason === 'success' && row.duration_seconds === 0) throw bad('duration_seconds', 'must be above 0 for a success');
  return row;
}

/** mkdir -p for an output folder (--out); one that cannot be made is bad input (exit 2). */
export function makeOutputDir(dir: string): void {
  makeDirs(dir, 'the output folder');
}

/** results/<YYYYMMDD-HHMMSS>/ under `parent` (a suffix -2, -3, ... when that second is taken). */
export function createRunDir(parent: string, now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  makeOutputDir(parent);
  for (let n = 1; ; n++) {
    const dir = path.join(parent, n === 1 ? stamp : `${stamp}-${n}`);
    try {
      fs.mkdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      // A read-only mount (EROFS) or /sys (EPERM) is the same bad input as a folder that cannot be made.
      throw new InputError(`cannot create the results folder ${dir}: ${describeFsError(e, parent)}`);
    }
    try {
      lockRunDir(dir);
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true }); // empty: nothing measured is lost, and no folder is left half made
      throw e;
    }
    return dir;
  }
}

/** Runs a write into a results folder; its failure (a full disk) becomes one line naming the file and the folder's free space. */
function writing<T>(file: string, write: () => T): T {
  try {
    return write();
  } catch (e) {
    throw new Error(`cannot write ${file}: ${describeFsError(e, path.dirname(file))}`);
  }
}

/** Appends one measured row at once (synchronously), writing the header first into a new file. */
export function appendRawRow(dir: string, row: RawRow): void {
  const file = path.join(dir, 'raw.csv');
  writing(file, () => {
    // Also into an empty one: a resume of a raw.csv emptied (or cut inside its header) restores the header.
    if (!fs.existsSync(file) || fs.statSync(file).size === 0) fs.writeFileSync(file, rawCsvHeader());
    fs.appendFileSync(file, rawCsvLine(row));
  });
}

/**
 * samples.csv: every memory sample of every iteration (about one per 250 ms), keyed by case and iteration;
 * t_seconds counts from the uploads' request start; phase is transfer while any upload still sends its body.
 */
export const SAMPLE_COLUMNS = [
  'memory_limit_mb', 'file_size_bytes', 'concurrency', 'iteration', 't_seconds',
  'env_memory_bytes', 'server_rss_bytes', 'data_dir_bytes', 'phase',
] as const;
export interface SampleRow {
  memory_limit_mb: number;
  file_size_bytes: number;
  concurrency: number;
  iteration: number;
  t_seconds: number;
  env_memory_bytes: number | null;
  server_rss_bytes: number | null;
  data_dir_bytes: number | null;
  phase: 'transfer' | 'processing';
}

export function appendSamples(dir: string, rows: SampleRow[]): void {
  const file = path.join(dir, 'samples.csv');
  if (!fs.existsSync(file)) fs.writeFileSync(file, SAMPLE_COLUMNS.join(',') + '\n');
  const cells = rows.map((r) => SAMPLE_COLUMNS.map((c) => (r[c] === null ? '' : String(r[c]))));
  if (cells.length > 0) fs.appendFileSync(file, Papa.unparse(cells, { header: false, newline: '\n' }) + '\n');
}

/** samples.csv text as rows; `where` names the file in messages. Pure. */
export function parseSamplesCsv(text: string, where: string): SampleRow[] {
  const parsed = Papa.parse<Record<string, string>>(text, { header: true, skipEmptyLines: true });
  const missing = SAMPLE_COLUMNS.filter((c) => !parsed.meta.fields?.includes(c));
  if (missing.length) throw new InputError(`${where}: not a samples file (no column ${missing.join(', ')})`);
  return parsed.data.map((r, i) => {
    const num = (c: (typeof SAMPLE_COLUMNS)[number], optional: boolean): number | null => {
      if (optional && r[c] === '') return null;
      const n = Number(r[c]);
      if (r[c] === '' || !Number.isFinite(n)) throw new InputError(`${where} line ${i + 2}, column ${c}: ${JSON.stringify(r[c])} is not a number`);
      return n;
    };
    if (r.phase !== 'transfer' && r.phase !== 'processing') throw new InputError(`${where} line ${i + 2}, column phase: ${JSON.stringify(r.phase)} is not transfer or processing`);
    return {
      memory_limit_mb: num('memory_limit_mb', false)!, file_size_bytes: num('file_size_bytes', false)!, concurrency: num('concurrency', false)!,
      iteration: num('iteration', false)!, t_seconds: num('t_seconds', false)!, env_memory_bytes: num('env_memory_bytes', true),
      server_rss_bytes: num('server_rss_bytes', true), data_dir_bytes: num('data_dir_bytes', true), phase: r.phase,
    };
  });
}

/** canary.csv: the machine canary (lib/canary.ts), timed before each case; the same figures in every side's folder. */
export const CANARY_COLUMNS = ['at', 'before_case', 'cpu_seconds', 'disk_seconds'] as const;
export interface CanaryRow { at: string; before_case: string; cpu_seconds: number; disk_seconds: number }

export function appendCanaryRow(dir: string, row: CanaryRow): void {
  const file = path.join(dir, 'canary.csv');
  if (!fs.existsSync(file)) fs.writeFileSync(file, CANARY_COLUMNS.join(',') + '\n');
  fs.appendFileSync(file, Papa.unparse([CANARY_COLUMNS.map((c) => String(row[c]))], { header: false, newline: '\n' }) + '\n');
}

/** canary.csv text as rows; `where` names the file in messages. Pure. */
export function parseCanaryCsv(text: string, where: string): CanaryRow[] {
  const parsed = Papa.parse<Record<string, string>>(text, { header: true, skipEmptyLines: true });
  const missing = CANARY_COLUMNS.filter((c) => !parsed.meta.fields?.includes(c));
  if (missing.length) throw new InputError(`${where}: not a canary file (no column ${missing.join(', ')})`);
  return parsed.data.map((r, i) => {
    const num = (c: 'cpu_seconds' | 'disk_seconds') => {
      const n = Number(r[c]);
      if (!(n > 0)) throw new InputError(`${where} line ${i + 2}, column ${c}: ${JSON.stringify(r[c])} is not a positive number`);
      return n;
    };
    return { at: r.at, before_case: r.before_case, cpu_seconds: num('cpu_seconds'), disk_seconds: num('disk_seconds') };
  });
}

export function appendFailure(dir: string, text: string): void {
  const file = path.join(dir, 'failures.log');
  writing(file, () => fs.appendFileSync(file, text.endsWith('\n') ? text : `${text}\n`));
}

/** Writes a file whole or not at all (write beside it, then rename); a failed write leaves no temporary file. */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writing(file, () => {
    try {
      fs.writeFileSync(tmp, text);
      fs.renameSync(tmp, file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  });
}

export function writeConfig(dir: string, config: object): void {
  writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
}
