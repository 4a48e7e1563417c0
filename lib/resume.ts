// --resume results/<run>: which iterations of a run are still to do, read back
// from its config.json (lib/run-record.ts gives the matrix it was started with)
// and raw.csv; for a run of several servers, from its parent folder, every
// side's. planResume and mergeResumedRecord are pure; readResumeState reads
// (and cuts from raw.csv a torn last line and any round some side lacks).
//   const state = readResumeState('results/20261125-101500')
//   const side = state.sides[0]
//   const plan = planResume(expandCases(matrixFromRecord(side.record, file)), side.rows)
//   // plan.remaining: the cases to run now, in the original order
import fs from 'node:fs';
import path from 'node:path';
import { iterationKey } from './cases.ts';
import { InputError } from './errors.ts';
import type { Case } from './matrix.ts';
import { readRunRecord } from './load-run.ts';
import { lockRunDir } from './lock.ts';
import { caseKey } from './cases.ts';
import { parseRawCsv, RAW_COLUMNS, RAW_MIN_COLUMNS, rawCsvHeader, rawCsvLine, splitTornLastRow, writeFileAtomic, type RawRow } from './results.ts';
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

/** Splits a run's cases into done (a row exists) and remaining. Pure. */
export function planResume(cases: Case[], rows: RowKey[]): ResumePlan {
  const have = new Set(rows.map((r) => iterationKey({ ...r, concurrency: r.concurrency ?? 1 })));
  const wanted = new Set(cases.map(iterationKey));
  const remaining = cases.filter((c) => !have.has(iterationKey(c)));
  return {
    remaining,
    done: cases.length - remaining.length,
    stray: [...have].filter((k) => !wanted.has(k)).length,
  };
}

export interface ResumeSide {
  dir: string;
  record: RunRecord;
  rows: RawRow[];
  /** Set when raw.csv ended in a cut-off line (a kill -9 mid-append), which was dropped. */
  droppedPartialLine: string | null;
}

/** A round (a case's iteration on every side) that only some sides completed: dropped from all, run again in full. */
export interface DroppedRound { case: string; iteration: number; /** The folders of the sides that had rows of it. */ sides: string[] }

export interface ResumeState {
  /** The folder given: the run's own, or the parent folder of a run of several servers. */
  dir: string;
  /** Set for a run of several servers (--ref A --ref B, --binary ...): its parent folder. */
  parent: string | null;
  /** The run's folder, or each server's in the order given (ab.this_ref). */
  sides: ResumeSide[];
  droppedRounds: DroppedRound[];
}

/**
 * Reads a run to resume: its config.json and rows, or for a run of several
 * servers each side's. A cut-off last line of raw.csv is removed from the file,
 * and so is every round some side lacks (see dropIncompleteRounds).
 */
export function readResumeState(dir: string): ResumeState {
  if (!fs.existsSync(dir)) throw new InputError(`--resume: ${dir}: no such folder`);
  if (!fs.statSync(dir).isDirectory()) throw new InputError(`--resume: ${dir}: not a folder`);
  const record = readRunRecord(dir);
  if (record?.ab) {
    throw new InputError(`--resume: ${dir} is one side of a run of ${record.ab.refs.length} servers; ` +
      `resume them together, from their parent folder: --resume ${path.dirname(dir)}`);
  }
  const found = record ? [{ dir, record }] : abSides(dir);
  if (found.length === 0) throw new InputError(`--resume: ${dir} has no config.json and no folder per ref (not a results folder?)`);
  // Before raw.csv is touched: a run still writing this folder must not have its rows cut or doubled.
  if (!record) lockRunDir(dir);
  const sides = found.map((f) => readSide(f.dir, f.record));
  const droppedRounds = dropIncompleteRounds(sides);
  return { dir, parent: record ? null : dir, sides, droppedRounds };
}

/** The sides of a run of several servers in `parent`, in the order given; checked to belong together. */
function abSides(parent: string): { dir: string; record: RunRecord }[] {
  const sides = fs.readdirSync(parent).map((n) => path.join(parent, n))
    .filter((d) => fs.statSync(d).isDirectory() && fs.existsSync(path.join(d, 'config.json')))
    .map((d) => ({ dir: d, record: readRunRecord(d)! })).filter((s) => s.record.ab)
    .sort((a, b) => a.record.ab!.this_ref - b.record.ab!.this_ref);
  if (sides.length === 0) return [];
  const ab = sides[0].record.ab!;
  const apart = sides.find((s, i) => s.record.ab!.this_ref !== i || s.record.ab!.seed !== ab.seed || s.record.ab!.refs.join('\0') !== ab.refs.join('\0'));
  if (apart || sides.length !== ab.refs.length) {
    throw new InputError(`--resume: ${parent}: its folders are not the ${ab.refs.length} sides of one run (${ab.refs.join(', ')}, seed ${ab.seed}): ` +
      `found ${sides.map((s) => `${path.basename(s.dir)} (side ${s.record.ab!.this_ref + 1}, seed ${s.record.ab!.seed})`).join(', ')}`);
  }
  if (typeof ab.seed !== 'number') throw new InputError(`--resume: ${parent}: no seed recorded (ab.seed), so the order of its rounds cannot be replayed`);
  return sides;
}

/** One results folder's rows, its lock taken; a torn last line of raw.csv is cut from the file. */
function readSide(dir: string, record: RunRecord): ResumeSide {
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

/**
 * Removes from every side's raw.csv (and samples.csv) the rows of each round
 * that not every side completed: the iteration the kill interrupted, on the
 * sides whose turn in it had come. They are run again, every side, in the
 * round's recorded order: running only the missing side would pair two
 * measurements taken apart, across a restart and a fresh environment, where
 * the interleaving is there to pair measurements taken side by side. An
 * iteration of N uploads at once is complete with its N rows. Returns the rounds.
 */
function dropIncompleteRounds(sides: ResumeSide[]): DroppedRound[] {
  const roundOf = (r: RawRow) => `${caseKey(r)}#${r.iteration}`;
  const complete = sides.map((s) => {
    const count = new Map<string, { n: number; of: number }>();
    for (const r of s.rows) count.set(roundOf(r), { n: (count.get(roundOf(r))?.n ?? 0) + 1, of: r.concurrency });
    return new Set([...count].filter(([, c]) => c.n >= c.of).map(([k]) => k));
  });
  const partial = new Map<string, DroppedRound>();
  for (const s of sides) {
    for (const r of s.rows.filter((x) => !complete.every((c) => c.has(roundOf(x))))) {
      const round = partial.get(roundOf(r)) ?? { case: caseKey(r), iteration: r.iteration, sides: [] };
      if (!round.sides.includes(path.basename(s.dir))) round.sides.push(path.basename(s.dir));
      partial.set(roundOf(r), round);
    }
  }
  for (const s of sides) {
    const dropped = s.rows.filter((r) => partial.has(roundOf(r)));
    if (dropped.length === 0) continue;
    s.rows = s.rows.filter((r) => !partial.has(roundOf(r)));
    writeFileAtomic(path.join(s.dir, 'raw.csv'), rawCsvHeader() + s.rows.map(rawCsvLine).join(''));
    const samples = path.join(s.dir, 'samples.csv');
    if (!fs.existsSync(samples)) continue;
    const keys = dropped.map((r) => `${r.memory_limit_mb},${r.file_size_bytes},${r.concurrency},${r.iteration},`);
    const text = fs.readFileSync(samples, 'utf8');
    // Whole lines only (a torn last one goes too); the key columns are plain numbers, never quoted.
    const lines = text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean);
    writeFileAtomic(samples, lines.filter((l, i) => i === 0 || !keys.some((k) => l.startsWith(k))).map((l) => `${l}\n`).join(''));
  }
  return [...partial.values()];
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
export function mergeResumedRecord(old: RunRecord, fresh: RunRecord, droppedRounds: DroppedRound[] = []): { record: RunRecord; warnings: string[] } {
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
    ...(droppedRounds.length > 0 ? { dropped_rounds: droppedRounds } : {}),
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
