// The run folder's files: raw.csv (one row per iteration, appended as measured),
// failures.log, config.json. The columns below are the contract with
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
    lockRunDir(dir);
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
