// The memory floor (--memory-floor): per case (file size x uploads at once)
// and server, the smallest memory limit the upload survives (a 200, the
// verified download, no OOM kill) in every one of k tries, found by bisection
// over MB. Pure: the next probe given the probes so far, the bracket and flaky
// band they leave, the verdict between two servers' floors, the worst-case plan.
//
//   let p: Probe[] = []; for (let s = nextProbe(set, p); s; s = nextProbe(set, p)) p = record(p, s.limitMb, await tryAt(s.limitMb))
//   const f = floorOf(set, p)   // { status: 'floor', floorMb: 136, highestFailingMb: 128, flaky: null, ... }
import { iterationRows } from '../cases.ts';
import type { RawRow } from '../results.ts';

export interface FloorSettings {
  /** --floor-range LO..HI, in MB (2^20 bytes, as the matrix's limits). */
  bottomMb: number;
  topMb: number;
  /** --floor-tries: a limit passes when every one of this many tries survives. */
  tries: number;
}

export const DEFAULT_FLOOR: FloorSettings = { bottomMb: 16, topMb: 4096, tries: 3 };

/** What was seen at one memory limit: tries that survived, tries that failed (a probe stops at its first failure). */
export interface Probe {
  limitMb: number;
  passed: number;
  failed: number;
  /** The first failure's reason and phase, e.g. "oom_killed (verification)"; null without a failure. */
  failure: string | null;
}

/** How close the search goes: 4 MB or 5% of the limit, whichever is larger. */
export function resolutionMb(limitMb: number): number {
  return Math.max(4, 0.05 * limitMb);
}

export function probeState(p: Probe, tries: number): 'pass' | 'fail' | 'incomplete' {
  if (p.failed > 0) return 'fail';
  return p.passed >= tries ? 'pass' : 'incomplete';
}

/** The bracket the probes leave: the highest limit that failed below the lowest that passed every try (either may be null). */
function bracket(s: FloorSettings, probes: Probe[]): { fail: number | null; pass: number | null } {
  const inRange = probes.filter((p) => p.limitMb >= s.bottomMb && p.limitMb <= s.topMb);
  const passes = inRange.filter((p) => probeState(p, s.tries) === 'pass').map((p) => p.limitMb);
  const pass = passes.length ? Math.min(...passes) : null;
  // A failure above a pass (possible only near a flaky edge, across resumes) does not move the bracket's low end past it.
  const fails = inRange.filter((p) => probeState(p, s.tries) === 'fail' && (pass === null || p.limitMb < pass)).map((p) => p.limitMb);
  return { fail: fails.length ? Math.max(...fails) : null, pass };
}

/**
 * The next limit to probe and how many tries it still needs, or null when the search is over. An unfinished probe
 * (interrupted) is finished first. The range's ends count as failing (bottom) and passing (top) until probed:
 * the search bisects geometrically between the bracket's ends, and probes an end only when the bracket has
 * narrowed to it, so a floor inside the range costs no probe at either end.
 */
export function nextProbe(s: FloorSettings, probes: Probe[]): { limitMb: number; tries: number } | null {
  const open = probes.find((p) => probeState(p, s.tries) === 'incomplete');
  if (open) return { limitMb: open.limitMb, tries: s.tries - open.passed };
  const { fail, pass } = bracket(s, probes);
  if (pass === s.bottomMb || fail === s.topMb) return null;
  const lo = fail ?? s.bottomMb;
  const hi = pass ?? s.topMb;
  if (hi - lo <= resolutionMb(hi)) {
    if (pass === null) return { limitMb: s.topMb, tries: s.tries };
    if (fail === null) return { limitMb: s.bottomMb, tries: s.tries };
    return null;
  }
  const mid = Math.min(hi - 1, Math.max(lo + 1, Math.round(Math.sqrt(lo * hi))));
  return { limitMb: mid, tries: s.tries };
}

/** `probes` with one more try's outcome at `limitMb` (a new probe, or added to that limit's). */
export function withTry(probes: Probe[], limitMb: number, outcome: { ok: boolean; failure?: string }): Probe[] {
  const i = probes.findIndex((p) => p.limitMb === limitMb);
  const p = i >= 0 ? probes[i] : { limitMb, passed: 0, failed: 0, failure: null };
  const next = outcome.ok ? { ...p, passed: p.passed + 1 } : { ...p, failed: p.failed + 1, failure: p.failure ?? outcome.failure ?? 'failed' };
  return i >= 0 ? probes.map((q, j) => (j === i ? next : q)) : [...probes, next];
}

export type FloorStatus = 'floor' | 'at-bottom' | 'no-floor' | 'incomplete';

export interface FloorResult {
  /** floor: found inside the range; at-bottom: survived even the lowest limit; no-floor: failed even the highest. */
  status: FloorStatus;
  /** The lowest limit that passed every try; null without one. */
  floorMb: number | null;
  /** The highest limit below it that failed; null when none did. */
  highestFailingMb: number | null;
  /** How it failed there, e.g. "oom_killed (verification)". */
  failedPhase: string | null;
  /** The limits where some tries passed and some failed; null when none did. */
  flaky: { fromMb: number; toMb: number } | null;
  probes: Probe[];
}

/** What the probes so far say: the bracket, the flaky band, and whether the search is over. */
export function floorOf(s: FloorSettings, probes: Probe[]): FloorResult {
  const { fail, pass } = bracket(s, probes);
  const mixed = probes.filter((p) => p.passed > 0 && p.failed > 0).map((p) => p.limitMb);
  const over = nextProbe(s, probes) === null;
  return {
    status: !over ? 'incomplete' : pass === null ? 'no-floor' : pass === s.bottomMb ? 'at-bottom' : 'floor',
    floorMb: pass,
    highestFailingMb: fail,
    failedPhase: fail === null ? null : probes.find((p) => p.limitMb === fail)?.failure ?? null,
    flaky: mixed.length ? { fromMb: Math.min(...mixed), toMb: Math.max(...mixed) } : null,
    probes,
  };
}

/** One sentence for a result: "136 MB (128 MB failed: oom_killed (upload))", "16 MB or less (the range's bottom)", ... */
export function describeFloor(s: FloorSettings, f: FloorResult): string {
  const flaky = f.flaky ? `; flaky ${f.flaky.fromMb}${f.flaky.toMb !== f.flaky.fromMb ? `..${f.flaky.toMb}` : ''} MB` : '';
  if (f.status === 'incomplete') return `incomplete (${f.probes.length} probes so far; --resume continues)`;
  if (f.status === 'no-floor') return `no floor: failed even at ${s.topMb} MB, the range's top (${f.failedPhase ?? 'failed'})${flaky}`;
  if (f.status === 'at-bottom') return `${s.bottomMb} MB or less: survived even the range's bottom${flaky}`;
  return `${f.floorMb} MB (${f.highestFailingMb} MB failed${f.failedPhase ? `: ${f.failedPhase}` : ''})${flaky}`;
}

export type FloorVerdict = 'needs more memory' | 'needs less' | 'same' | 'incomplete';

/**
 * A later server's floor against the first's: `needs more memory` when higher by more than the resolution plus both
 * flaky bands, `needs less` when lower by as much, else `same`. No floor counts as above the range's top; a floor
 * at the bottom as the bottom (both ends of the range say no more than that).
 */
export function compareFloors(s: FloorSettings, base: FloorResult, cand: FloorResult): { verdict: FloorVerdict; deltaMb: number | null; thresholdMb: number } {
  const width = (f: FloorResult) => (f.flaky ? f.flaky.toMb - f.flaky.fromMb : 0);
  const level = (f: FloorResult) => (f.status === 'no-floor' ? Infinity : f.floorMb!);
  if (base.status === 'incomplete' || cand.status === 'incomplete') return { verdict: 'incomplete', deltaMb: null, thresholdMb: 0 };
  const a = level(base), b = level(cand);
  const threshold = resolutionMb(Math.min(s.topMb, Math.max(a, b))) + width(base) + width(cand);
  const delta = a === b ? 0 : b - a; // both Infinity: the same (neither has a floor in the range)
  const verdict = delta > threshold ? 'needs more memory' : delta < -threshold ? 'needs less' : 'same';
  return { verdict, deltaMb: Number.isFinite(delta) ? delta : null, thresholdMb: Math.round(threshold * 10) / 10 };
}

/**
 * The probes of one search read back from its raw.csv rows (one file size and concurrency, any memory limits): each
 * limit's iterations (N uploads at once are one) counted as passed or failed, in the order they were first run.
 */
export function probesFromRows(rows: readonly RawRow[]): Probe[] {
  const byLimit = new Map<number, RawRow[]>();
  for (const r of [...rows].sort((a, b) => a.started_at.localeCompare(b.started_at))) byLimit.set(r.memory_limit_mb, [...(byLimit.get(r.memory_limit_mb) ?? []), r]);
  return [...byLimit].map(([limitMb, g]) => {
    const its = iterationRows(g);
    const failed = its.filter((r) => r.exit_reason !== 'success');
    const f = g.find((r) => r.exit_reason !== 'success'); // the upload's own row: an aggregate keeps the first upload's phase
    return { limitMb, passed: its.length - failed.length, failed: failed.length, failure: f ? (f.failure_phase ? `${f.exit_reason} (${f.failure_phase})` : f.exit_reason) : null };
  });
}

/**
 * The most a search can cost: over every place the floor could be (each whole MB of the range, and none), the most
 * probes (environments brought up) and the most tries it would take (each bound on its own), a pass costing every try and a failure one. For the
 * VM providers' estimate before the run. Exact: the search is deterministic given where the floor is.
 */
export function worstCase(s: FloorSettings): { probes: number; tries: number } {
  let worst = { probes: 0, tries: 0 };
  for (let floor = s.bottomMb; floor <= s.topMb + 1; floor++) {
    let probes: Probe[] = [];
    let tries = 0;
    for (let n = nextProbe(s, probes); n; n = nextProbe(s, probes)) {
      const ok = n.limitMb >= floor;
      tries += ok ? n.tries : 1;
      probes = ok ? [...probes, { limitMb: n.limitMb, passed: n.tries, failed: 0, failure: null }] : withTry(probes, n.limitMb, { ok: false });
    }
    worst = { probes: Math.max(worst.probes, probes.length), tries: Math.max(worst.tries, tries) };
  }
  return worst;
}

/** --floor-range LO..HI and --floor-tries N as settings; an Error names what is wrong with the value. */
export function parseFloorRange(text: string): { bottomMb: number; topMb: number } {
  const m = /^\s*(\d+)\s*\.\.\s*(\d+)\s*$/.exec(text);
  if (!m) throw new Error('LO..HI in MB, e.g. 64..1024');
  const [lo, hi] = [Number(m[1]), Number(m[2])];
  if (lo < 1 || hi > 1048576 || hi <= lo) throw new Error('LO from 1, HI above LO, at most 1048576 MB');
  return { bottomMb: lo, topMb: hi };
}

export function parseFloorTries(text: string): number {
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < 1 || Number(text) > 100) throw new Error('a whole number from 1 to 100');
  return Number(text);
}
