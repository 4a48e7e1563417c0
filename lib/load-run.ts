// Reads a results folder back in for compare-runs: raw.csv (validated against
// RAW_COLUMNS, every row typed) and config.json. Every problem throws a
// InputError (exit 2) whose message names the folder, file, line and column.
//
//   const run = loadRun('results/20261124-101500')  // { dir, name, config, rows }
import fs from 'node:fs';
import path from 'node:path';
import Papa from 'papaparse';
import { InputError } from './errors.ts';
import { EXIT_REASONS, FAILURE_PHASES, RAW_COLUMNS, RAW_MIN_COLUMNS, type ExitReason, type FailurePhase, type RawColumn, type RawRow } from './results.ts';

/** config.json as run-tests writes it (schema 1); every field optional when reading older or partial runs. */
export interface RunConfig {
  suite_version?: string;
  /** The suite's own checkout, as opposed to the server's (server.git). */
  suite_git?: { commit?: string; branch?: string; dirty?: boolean } | null;
  schema?: number;
  command?: string[];
  started_at?: string;
  ended_at?: string | null;
  finished?: boolean;
  stop_reason?: string | null;
  provider?: string;
  provider_facts?: Record<string, unknown>;
  server?: {
    kind?: string;
    path?: string | null;
    git?: { commit?: string; branch?: string; dirty?: boolean } | null;
    standin_env?: Record<string, string>;
  };
  matrix?: {
    sizes?: { label: string; bytes: number }[];
    memory_limits_mb?: number[];
    iterations?: number;
    warmup_iterations?: number;
    upload_timeout_seconds?: number;
    readiness_timeout_seconds?: number;
  };
  host?: { hostname?: string; cpu_model?: string; cores?: number; kernel?: string; memory_bytes?: number };
}

export interface LoadedRun {
  dir: string;
  /** The folder's base name, e.g. 20261124-101500. */
  name: string;
  /** Empty when the folder has no config.json. */
  config: RunConfig;
  rows: RawRow[];
}

export const CONFIG_SCHEMA = 1;

const REQUIRED_NUMBERS: RawColumn[] = ['duration_seconds', 'iteration', 'file_size_bytes', 'memory_limit_mb'];
const OPTIONAL_NUMBERS: RawColumn[] = [
  'peak_memory_bytes', 'http_status', 'transfer_seconds', 'processing_seconds', 'throughput_mib_s', 'server_peak_rss_bytes',
  'host_cpu_pressure_pct',
];

export function loadRun(dir: string): LoadedRun {
  if (!fs.existsSync(dir)) throw new InputError(`${dir}: no such folder`);
  if (!fs.statSync(dir).isDirectory()) throw new InputError(`${dir}: not a folder`);
  const csvPath = path.join(dir, 'raw.csv');
  if (!fs.existsSync(csvPath)) throw new InputError(`${dir}: no raw.csv in this folder (not a results folder?)`);
  if (!fs.statSync(csvPath).isFile()) throw new InputError(`${csvPath}: not a file`);
  const config = readConfig(dir);
  const rows = parseRawCsv(fs.readFileSync(csvPath, 'utf8'), csvPath);
  return { dir, name: path.basename(path.resolve(dir)), config, rows };
}

function readConfig(dir: string): RunConfig {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) return {};
  if (!fs.statSync(file).isFile()) throw new InputError(`${file}: not a file`);
  let config: unknown;
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new InputError(`${file}: expected a JSON object`);
  }
  const schema = (config as RunConfig).schema;
  if (schema !== undefined && schema !== CONFIG_SCHEMA) {
    throw new InputError(`${file}: unknown schema ${JSON.stringify(schema)} (this compare-runs reads schema ${CONFIG_SCHEMA})`);
  }
  return config as RunConfig;
}

/** Parses raw.csv text into typed rows; `where` names the file in error messages. Pure. */
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
  // One row per (case, iteration): two runs writing one folder at once doubled rows, which compare-runs took as data.
  const firstLine = new Map<string, number>();
  rows.forEach((r, i) => {
    const k = `${r.memory_limit_mb}/${r.file_size_bytes}/${r.iteration}`;
    const first = firstLine.get(k);
    if (first !== undefined) {
      throw new InputError(`${where}: lines ${first} and ${i + 2} are both ${r.memory_limit} ${r.file_size} iteration ${r.iteration} ` +
        '(two runs wrote this folder at once?): keep one of them');
    }
    firstLine.set(k, i + 2);
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
