// The run folder's files: raw.csv (one row per iteration, appended as measured,
// and parsed back), failures.log, config.json. The columns below are the contract with
// compare-runs and anyone plotting the data; add columns at the end only.
import fs from 'node:fs';
import path from 'node:path';
import Papa from 'papaparse';
import { describeFsError, makeDirs } from './dirs.ts';
import { InputError } from './errors.ts';
import { lockRunDir } from './lock.ts';
import { iterationKey } from './cases.ts';
import { parseRow, rawCsvHeader, rawCsvLine, RAW_COLUMNS, RAW_MIN_COLUMNS, type RawRow } from './row.ts';

// The row itself (its columns, types, writer and one-line parser) is lib/row.ts.
export { EXIT_REASONS, FAILURE_PHASES, RAW_COLUMNS, RAW_MIN_COLUMNS, rawCsvHeader, rawCsvLine, type ExitReason, type FailurePhase, type RawColumn, type RawRow } from './row.ts';

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
    const k = iterationKey(r);
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
