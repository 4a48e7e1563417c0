// Reads a results folder back in for compare-runs: raw.csv (validated against
// RAW_COLUMNS, every row typed) and config.json. Every problem throws a
// InputError (exit 2) whose message names the folder, file, line and column.
//
//   const run = loadRun('results/20261124-101500')  // { dir, name, config, rows }
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from './errors.ts';
import { parseCanaryCsv, parseRawCsv, splitTornLastRow, type CanaryRow, type RawRow } from './results.ts';
import { parseRunRecord, type RunRecord } from './run-record.ts';

export interface LoadedRun {
  dir: string;
  /** The folder's base name, e.g. 20261124-101500. */
  name: string;
  /** null when the folder has no config.json. */
  config: RunRecord | null;
  rows: RawRow[];
  /** canary.csv's rows; empty for a run made before the canary existed. */
  canary: CanaryRow[];
  /** What the reader should know: a torn last row of an unfinished run, left out. */
  warnings: string[];
}

export function loadRun(dir: string): LoadedRun {
  if (!fs.existsSync(dir)) throw new InputError(`${dir}: no such folder`);
  if (!fs.statSync(dir).isDirectory()) throw new InputError(`${dir}: not a folder`);
  const csvPath = path.join(dir, 'raw.csv');
  if (!fs.existsSync(csvPath)) throw new InputError(`${dir}: no raw.csv in this folder (not a results folder?)`);
  if (!fs.statSync(csvPath).isFile()) throw new InputError(`${csvPath}: not a file`);
  const config = readRunRecord(dir);
  const { text, warnings } = readRawText(csvPath, config);
  const rows = parseRawCsv(text, csvPath);
  const canaryPath = path.join(dir, 'canary.csv');
  const canary = fs.existsSync(canaryPath) ? parseCanaryCsv(fs.readFileSync(canaryPath, 'utf8'), canaryPath) : [];
  return { dir, name: path.basename(path.resolve(dir)), config, rows, canary, warnings };
}

/**
 * raw.csv's text. A run that did not finish (killed mid-append, or on a full
 * disk) may end in half a row: left out, with a warning naming --resume, which
 * drops it and runs that iteration again. A torn row anywhere else, or in a
 * finished run, stays an error (parseRawCsv).
 */
export function readRawText(csvPath: string, config: RunRecord | null): { text: string; warnings: string[] } {
  const text = fs.readFileSync(csvPath, 'utf8');
  const split = config && !config.finished ? splitTornLastRow(text, csvPath) : { kept: text, torn: null };
  if (split.torn === null) return { text: split.kept, warnings: [] };
  return {
    text: split.kept,
    warnings: [`${csvPath}: its last row is cut off (${JSON.stringify(split.torn.slice(0, 40))}...): the run did not finish and was ` +
      `stopped mid-write, so that row is left out; run-tests --resume ${config!.ab?.parent ?? path.dirname(csvPath)} finishes the run`],
  };
}

/** A folder's config.json as a validated RunRecord (lib/run-record.ts); null when the folder has none. */
export function readRunRecord(dir: string): RunRecord | null {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) return null;
  if (!fs.statSync(file).isFile()) throw new InputError(`${file}: not a file`);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseRunRecord(json, file);
}
