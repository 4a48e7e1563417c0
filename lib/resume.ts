// --resume results/<run>: which iterations of a run are still to do, read back
// from its config.json (lib/run-record.ts gives the matrix it was started with)
// and raw.csv. planResume and mergeResumedRecord are pure; readResumeState reads.
//   const state = readResumeState('results/20261125-101500')
//   const plan = planResume(expandCases(matrixFromRecord(state.record, file)), state.rows)
//   // plan.remaining: the cases to run now, in the original order
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from './errors.ts';
import type { Case } from './matrix.ts';
import { readRunRecord } from './load-run.ts';
import { lockRunDir } from './lock.ts';
import { parseRawCsv, RAW_COLUMNS, RAW_MIN_COLUMNS, splitTornLastRow, type RawRow } from './results.ts';
import type { GitRecord, ResumeRecord, RunRecord } from './run-record.ts';

export interface ResumePlan {
  /** Cases with no row yet, in the order they would have run. */
  remaining: Case[];
  /** Cases that already have a row (any exit_reason: a recorded failure is a result). */
  done: number;
  /** Rows that match no case of the matrix (hand-edited raw.csv?): kept, reported. */
  stray: number;
}

type RowKey = Pick<RawRow, 'memory_limit_mb' | 'file_size_bytes' | 'iteration'> & { concurrency?: number };
const key = (memoryMb: number, bytes: number, concurrency: number, iteration: number) => `${memoryMb}/${bytes}/${concurrency}/${iteration}`;

/** Splits a run's cases into done (a row exists) and remaining. Pure. */
export function planResume(cases: Case[], rows: RowKey[]): ResumePlan {
  const have = new Set(rows.map((r) => key(r.memory_limit_mb, r.file_size_bytes, r.concurrency ?? 1, r.iteration)));
  const wanted = new Set(cases.map((c) => key(c.memoryMb, c.size.bytes, c.concurrency ?? 1, c.iteration)));
  const remaining = cases.filter((c) => !have.has(key(c.memoryMb, c.size.bytes, c.concurrency ?? 1, c.iteration)));
  return {
    remaining,
    done: cases.length - remaining.length,
    stray: [...have].filter((k) => !wanted.has(k)).length,
  };
}

export interface ResumeState {
  dir: string;
  record: RunRecord;
  rows: RawRow[];
  /** Set when raw.csv ended in a cut-off line (a kill -9 mid-append), which was dropped. */
  droppedPartialLine: string | null;
}

/** Reads a run folder to resume: config.json and the rows so far. A cut-off last line of raw.csv is removed from the file. */
export function readResumeState(dir: string): ResumeState {
  if (!fs.existsSync(dir)) throw new InputError(`--resume: ${dir}: no such folder`);
  if (!fs.statSync(dir).isDirectory()) throw new InputError(`--resume: ${dir}: not a folder`);
  const record = readRunRecord(dir);
  if (!record) throw new InputError(`--resume: ${dir} has no config.json (not a results folder?)`);
  if (record.ab) {
    throw new InputError(`--resume: ${dir} is one side of a two-ref run; rerun the comparison instead (resuming one side would break its interleaving)`);
  }
  // Before raw.csv is touched: a run still writing this folder must not have its rows cut or doubled.
  lockRunDir(dir);
  const csvFile = path.join(dir, 'raw.csv');
  let rows: RawRow[] = [];
  let droppedPartialLine: string | null = null;
  if (fs.existsSync(csvFile)) {
    let text = fs.readFileSync(csvFile, 'utf8');
    if (text !== '' && !text.endsWith('\n')) {
      // Only a header cut short has no newline at all: dropped, the file gets a fresh header.
      const split = text.includes('\n') ? splitTornLastRow(text, csvFile) : { kept: '', torn: text };
      if (split.torn === null) {
        fs.appendFileSync(csvFile, '\n'); // every column there: a finished row whose newline was lost, kept (not run again)
      } else {
        droppedPartialLine = split.torn;
        fs.truncateSync(csvFile, Buffer.byteLength(split.kept));
      }
      text = split.kept;
    }
    const lines = text.split('\n').filter(Boolean);
    // A header cut short was dropped above, leaving an empty file that gets a fresh header; rows without one
    // would be read as a header and the folder refused by compare-runs, so they are refused here.
    if (lines.length > 0 && !isRawHeader(lines[0])) {
      throw new InputError(`--resume: ${csvFile} line 1 is not raw.csv's header (${JSON.stringify(lines[0].slice(0, 60))}): ` +
        `restore the header line (${RAW_COLUMNS.slice(0, 3).join(',')},...) or start a new run`);
    }
    if (lines.length > 1) rows = parseRawCsv(text, csvFile);
  }
  return { dir, record, rows, droppedPartialLine };
}

/** Whether a line is raw.csv's header: the schema-1 columns in their places (later ones may follow). */
function isRawHeader(line: string): boolean {
  const cells = line.split(',');
  return RAW_COLUMNS.slice(0, RAW_MIN_COLUMNS).every((c, i) => cells[i] === c);
}

/**
 * The resumed run's record: the recorded one, reopened (finished false, no
 * stop reason), with this attempt appended to `resumes`. Warns when the
 * server (commit, binary or stand-in knobs), the host or the suite differ
 * from the recorded run: its rows will then mix both. Pure.
 */
export function mergeResumedRecord(old: RunRecord, fresh: RunRecord): { record: RunRecord; warnings: string[] } {
  const warnings: string[] = [];
  const was = old.server;
  const now = fresh.server;
  if (was.git?.commit !== now.git?.commit || Boolean(was.git?.dirty) !== Boolean(now.git?.dirty)) {
    const name = (g: GitRecord | null) => (g ? `${g.commit.slice(0, 12)}${g.dirty ? ' (dirty)' : ''}` : 'none');
    warnings.push(`the server's commit differs: the run started with ${name(was.git)}, this resume runs ${name(now.git)}; ` +
      'both are recorded (config.json server and resumes), and the rows mix them');
  } else if (was.kind !== now.kind || was.path !== now.path) {
    warnings.push(`the server differs: the run started with ${was.kind} ${was.path ?? ''}, this resume runs ${now.kind} ${now.path ?? ''}`.replace(/ +/g, ' '));
  }
  if (JSON.stringify(was.standin_env ?? {}) !== JSON.stringify(now.standin_env ?? {})) {
    warnings.push(`the stand-in's knobs differ: ${JSON.stringify(was.standin_env ?? {})} then, ${JSON.stringify(now.standin_env ?? {})} now`);
  }
  if (old.host.hostname !== '' && old.host.hostname !== fresh.host.hostname) {
    warnings.push(`the host differs: the run started on ${old.host.hostname}, this resume runs on ${fresh.host.hostname}`);
  }
  const resume: ResumeRecord = {
    started_at: fresh.started_at, command: fresh.command, suite_version: fresh.suite_version,
    suite_git: fresh.suite_git, server: fresh.server, host: fresh.host,
  };
  const record: RunRecord = {
    ...old,
    finished: false,
    stop_reason: null,
    ended_at: null,
    provider_facts: { ...old.provider_facts },
    resumes: [...(old.resumes ?? []), resume],
  };
  return { record, warnings };
}
