// A bisection's folder on disk: bisect-plan.json (the command, the commits in
// history order, the seed: what --resume needs to go on exactly as begun) and
// steps.jsonl, the step log: one line per completed step, appended when the
// step is done, so an interrupted step is measured again and a completed one
// never is.
//   writeBisectPlan(dir, plan); appendStep(dir, step); readSteps(dir)
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from './errors.ts';
import type { PairJudgement, StepClass } from './stats/bisect.ts';

export const PLAN_FILE = 'bisect-plan.json';
export const STEP_LOG = 'steps.jsonl';

export interface Commit { commit: string; date: string; subject: string }

export interface BisectPlan {
  argv: string[];
  cwd: string;
  source: string;
  good: string;
  bad: string;
  metric: string;
  first_parent: boolean;
  /** GOOD, every commit of the range, BAD: in history order (oldest first). */
  commits: Commit[];
  seed: number;
  started_at: string;
}

export interface StepRecord {
  /** 0: GOOD against BAD; then one per midpoint, in the order measured. */
  step: number;
  kind: 'confirm' | 'midpoint' | 'skip';
  /** Indices into plan.commits of the sides measured (confirm: GOOD, BAD; midpoint: range's good end, midpoint, range's bad end). */
  sides: number[];
  /** The midpoint's index (confirm: BAD's). */
  commit: number;
  /** The parent folder of the step's results folders; null for a skipped build. */
  folder: string | null;
  /** The case judged (caseKey); for the confirmation, the one chosen to bisect on. */
  case: string | null;
  /** Confirmation: every case's GOOD -> BAD judgement. */
  cases?: { case: string; judgement: PairJudgement | null }[];
  /** Midpoint: [good end -> midpoint, midpoint -> bad end]; confirm: [GOOD -> BAD] of the chosen case. */
  judgements: PairJudgement[];
  class: StepClass | 'skip' | null;
  /** Each side's values of the judged case, round by round (for the path's interval against GOOD). */
  values: number[][];
  rounds: number;
  seconds: number;
  /** A skipped build: its last line. */
  build_error?: string;
  ended_at: string;
}

export function readBisectPlan(dir: string): BisectPlan | null {
  const f = path.join(dir, PLAN_FILE);
  if (!fs.existsSync(f)) return null;
  try {
    return JSON.parse(fs.readFileSync(f, 'utf8')) as BisectPlan;
  } catch (e) {
    throw new InputError(`${f}: not a bisection plan (${(e as Error).message})`);
  }
}

export function writeBisectPlan(dir: string, plan: BisectPlan): void {
  fs.writeFileSync(path.join(dir, PLAN_FILE), JSON.stringify(plan, null, 2) + '\n');
}

/** The completed steps; a last line cut off by a kill is left out (that step is measured again). */
export function readSteps(dir: string): StepRecord[] {
  const f = path.join(dir, STEP_LOG);
  if (!fs.existsSync(f)) return [];
  const out: StepRecord[] = [];
  for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try { out.push(JSON.parse(line) as StepRecord); } catch { break; }
  }
  return out;
}

export function appendStep(dir: string, step: StepRecord): void {
  fs.appendFileSync(path.join(dir, STEP_LOG), JSON.stringify(step) + '\n');
}
