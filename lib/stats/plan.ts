// The plan before the run: the cases, the bytes one round moves, the rounds the
// rules may take (least, expected, most), the wall time that implies on this
// machine, and what --shard N would make of it; during the run, the time left.
//
//   const plan = makePlan({ cases, sides: 2, warmup: 1, iterations: null, rule, pooled, profile, shards, canaryNow })
//   process.stdout.write(renderPlan(plan))
//   timeLeft(plan, progressSoFar)   // seconds
//
// "Expected" assumes the common case, a branch that changes nothing: the look
// at which the last case of such a run stops, the median of seeded simulated
// runs through the real rules (lib/stats/adaptive.ts, with the pool of
// lib/stats/pooled.ts) at the per-round paired SD last measured on
// this machine (or the default). The machine's speeds come from the same place,
// scaled by how much slower the machine canary's CPU part runs now than it did
// in that run: a profile measured at load 2 said 3 min for a run that took 23
// at load 7, when the canary ran 4.3-5x slower.
//
// Pure: figures in, figures out (test/plan.test.mts).
import type { PooledRule } from './pooled.ts';
import { AdaptiveRounds, type CaseStop } from './adaptive.ts';
import { normalFrom, seededRandom } from './interleave.ts';
import { caseKey } from '../cases.ts';
import type { RawRow } from '../results.ts';
import type { StoppingRule } from './sequential.ts';
import { median } from './stats.ts';
import { formatBytes, MiB } from '../units.ts';

/** What the last run of a server measured on this machine (lib/machine-profile.ts, one per server), or the defaults. */
export interface MachineProfile {
  /** Upload and verification download speeds, MiB/s. */
  upload_mib_s: number;
  download_mib_s: number;
  /** Per job, beside the upload and download: server start, readiness, auth, delete, the canary's share, the noise cuts. */
  job_overhead_seconds: number;
  /** Per-round paired SD of the throughput log ratio, percent (median over the cases of the run that measured it). */
  paired_sd_pct: number;
  /** The paired SDs (percent) of the last runs, newest last; paired_sd_pct is their median (nextProfile). */
  recent_paired_sd_pct?: number[];
  /**
   * Per file size (bytes, as text): the median of the last runs' paired SDs over that size's cases. The cases of one
   * matrix differ (100MiB paired 9-12% where 500MiB paired 3-6%), and the pool weighs them by it; a size with no
   * figure takes paired_sd_pct.
   */
  paired_sd_pct_by_size?: Record<string, number>;
  recent_paired_sd_pct_by_size?: Record<string, number[]>;
  /** Seconds of the machine canary's CPU part (lib/canary.ts) timed before that run, as a plan times it now; absent when unknown. */
  canary_cpu_seconds?: number;
  /** Where the figures come from: "default" or the run folder that measured them, and when. */
  source: string;
}

/** Defaults from issue 28's measurements on the project's machine (170 MiB/s up, 300 down, SD 7.5-10% at 100 MiB). */
export const DEFAULT_PROFILE: MachineProfile = {
  upload_mib_s: 170, download_mib_s: 300, job_overhead_seconds: 1.5, paired_sd_pct: 8, source: 'default (issue 28 figures)',
};

export interface PlanCase {
  /** caseKey (lib/cases.ts). */
  key: string;
  label: string;
  bytes: number;
  concurrency: number;
}

export interface PlanInput {
  cases: PlanCase[];
  sides: number;
  warmup: number;
  /** Fixed iterations per case and side (warm-up included); null with adaptive rounds. */
  iterations: number | null;
  rule: StoppingRule | null;
  pooled: PooledRule | null;
  profile: MachineProfile;
  /** --shard N for some N: each shard's case keys (lib/shard.ts planShards). */
  shards: { total: number; cases: string[][] }[];
  /** The canary's CPU part timed just now; null when not timed. */
  canaryNow: number | null;
}

export interface PlanRecord {
  cases: number;
  sides: number;
  /** Bytes one round of every case moves: uploads and verification downloads, every side. */
  bytes_per_round: number;
  rounds: { least: number; expected: number; most: number };
  seconds: { least: number; expected: number; most: number };
  per_case: { case: string; label: string; bytes: number; job_seconds: number; expected_rounds: number }[];
  shards: { total: number; expected_seconds: number; most_seconds: number }[];
  profile: MachineProfile;
  /** Job times are the profile's times this many times over: the canary now against the canary then (1 without both). */
  slowdown: number;
  canary_now_seconds: number | null;
}

/** How many runs' paired SDs the profile keeps: one run of one case is a noisy estimate of the machine's spread. */
export const PROFILE_SD_RUNS = 5;

/**
 * The profile to keep after a run measured `measured`: its speeds and canary (the machine as it is now), and
 * the median paired SD of the last PROFILE_SD_RUNS runs. A plan from one lucky 1-case run (SD 4.1%) said 8 min
 * for a 4-case run whose cases spread 5-7% and took 17.
 */
export function nextProfile(prev: MachineProfile | null, measured: MachineProfile): MachineProfile {
  const recent = [...(prev?.recent_paired_sd_pct ?? (prev ? [prev.paired_sd_pct] : [])), measured.paired_sd_pct].slice(-PROFILE_SD_RUNS);
  const bySize: Record<string, number[]> = { ...prev?.recent_paired_sd_pct_by_size };
  for (const [size, sdPct] of Object.entries(measured.paired_sd_pct_by_size ?? {})) bySize[size] = [...(bySize[size] ?? []), sdPct].slice(-PROFILE_SD_RUNS);
  const sized = Object.keys(bySize).length > 0
    ? { paired_sd_pct_by_size: Object.fromEntries(Object.entries(bySize).map(([size, xs]) => [size, median(xs)])), recent_paired_sd_pct_by_size: bySize }
    : {};
  return { ...measured, paired_sd_pct: median(recent), recent_paired_sd_pct: recent, ...sized };
}

/** A case's per-round paired SD by the profile: its file size's, else the profile's. */
export function caseSdPct(p: MachineProfile, bytes: number): number {
  return p.paired_sd_pct_by_size?.[String(bytes)] ?? p.paired_sd_pct;
}

/** Seconds one job (one side's upload of a case, with its download and overhead) takes by the profile. */
export function jobSeconds(c: PlanCase, p: MachineProfile, slowdown = 1): number {
  const mib = (c.bytes * c.concurrency) / MiB;
  return slowdown * (p.job_overhead_seconds + mib / p.upload_mib_s + mib / p.download_mib_s);
}

/** How much slower the machine is now than when the profile was measured, by the canary's CPU part; 1 when either is unknown. */
export function slowdownOf(p: MachineProfile, canaryNow: number | null): number {
  return canaryNow !== null && canaryNow > 0 && p.canary_cpu_seconds ? canaryNow / p.canary_cpu_seconds : 1;
}

/**
 * The look an unchanged run's last case is expected to stop at, at a per-round paired SD of `sdPct`: the
 * median, over seeded simulated runs of `cases` cases through the real AdaptiveRounds (independent normal
 * noise, every case in each round; 51 runs up to 20 cases, 11 from 100), of the look its last case stopped
 * at. A formula for one case said 16 for a 20-case matrix at 8%, whose last case stops at 24
 * (test/time-to-same.test.mts). Memoized: the plan asks once per shard size.
 */
export function expectedLook(sdPct: number, rule: StoppingRule, pooled: PooledRule | null, cases: number): number {
  return expectedStops(Array.from({ length: cases }, () => sdPct), rule, pooled).last;
}

/**
 * expectedLook for cases of their own SDs (percent, one per case): the last case's look, and each case's own (the
 * mean of the rounds it stopped at, rounded). A steady case is let go by the pool before a noisy one, so its rounds,
 * which are the heavy 500MiB jobs in the real 4-case matrix, are not the last case's.
 */
export function expectedStops(sdPcts: readonly number[], rule: StoppingRule, pooled: PooledRule | null): { last: number; perCase: number[] } {
  const cases = sdPcts.length;
  const memo = `${sdPcts.join(',')}/${JSON.stringify(rule)}/${JSON.stringify(pooled)}`;
  const known = expectedLooks.get(memo);
  if (known !== undefined) return known;
  // Every look of a case pools all the cases, so a run costs about cases squared: fewer runs for big matrices.
  const runs = 2 * Math.max(5, Math.min(25, Math.floor((25 * 20) / Math.max(1, cases)))) + 1;
  const sims = simulateUnchanged({ sdPct: sdPcts, rule, pooled, cases, runs, seed: 1 });
  const mid = (xs: number[]) => xs.sort((a, b) => a - b)[runs >> 1];
  // Per case the mean, not the median: the run's time is a sum over its cases, and the pool often lets most cases
  // go at one look and a few at the next (20 cases at 8%: each case's median 16 rounds, the last case's 24).
  const mean = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
  const stops = { last: mid(sims.map((x) => Math.max(0, ...x.map((c) => c.rounds)))), perCase: sdPcts.map((_, c) => mean(sims.map((x) => x[c].rounds))) };
  expectedLooks.set(memo, stops);
  return stops;
}

/**
 * Seeded unchanged runs of `cases` cases through the real AdaptiveRounds: both sides' throughput log-normal
 * around the same mean at a per-round paired SD of `sdPct` (one for all, or case by case), every case in each
 * round, in case order. Per run, each case's stop, indexed by case.
 */
export function simulateUnchanged(o: { sdPct: number | readonly number[]; rule: StoppingRule; pooled: PooledRule | null; cases: number; runs: number; seed: number }): CaseStop[][] {
  const normal = normalFrom(seededRandom(o.seed));
  const sdOf = (c: number) => Math.log(1 + (typeof o.sdPct === 'number' ? o.sdPct : o.sdPct[c]) / 100) / Math.SQRT2;
  const cap = o.rule.looks[o.rule.looks.length - 1];
  const key = (c: number) => ({ file_size_bytes: c + 1, memory_limit_mb: 256, concurrency: 1 });
  const row = (c: number, iteration: number, throughput: number) =>
    ({ ...key(c), iteration, exit_reason: 'success', throughput_mib_s: throughput, duration_seconds: 1 }) as RawRow;
  return Array.from({ length: o.runs }, () => {
    const rounds = new AdaptiveRounds(o.rule, 2, 0, o.pooled);
    for (let it = 1; it <= cap; it++) {
      for (let c = 0; c < o.cases; c++) {
        if (rounds.stopped(caseKey(key(c)))) continue;
        rounds.record(0, row(c, it, 100 * Math.exp(sdOf(c) * normal())));
        rounds.record(1, row(c, it, 100 * Math.exp(sdOf(c) * normal())));
      }
    }
    const stops = new Map(rounds.all().map((x) => [x.case, x]));
    return Array.from({ length: o.cases }, (_, c) => stops.get(caseKey(key(c)))!);
  });
}
const expectedLooks = new Map<string, { last: number; perCase: number[] }>();

export function makePlan(i: PlanInput): PlanRecord {
  const measured = i.iterations === null ? null : Math.max(0, i.iterations - i.warmup);
  // The rounds a set of cases is expected to take: with the pool, fewer the more cases pool together.
  const sdOfKey = new Map(i.cases.map((c) => [c.key, caseSdPct(i.profile, c.bytes)]));
  const stopsOf = (keys: readonly string[]) => (i.rule ? expectedStops(keys.map((k) => sdOfKey.get(k)!), i.rule, i.pooled) : { last: measured!, perCase: keys.map(() => measured!) });
  const expectedFor = (keys: readonly string[]): Map<string, number> => {
    const per = stopsOf(keys).perCase;
    return new Map(keys.map((k, j) => [k, per[j]]));
  };
  const whole = expectedFor(i.cases.map((c) => c.key));
  const rounds = i.rule
    ? { least: i.rule.looks[0], expected: stopsOf(i.cases.map((c) => c.key)).last, most: i.rule.looks[i.rule.looks.length - 1] }
    : { least: measured!, expected: measured!, most: measured! };
  const slowdown = slowdownOf(i.profile, i.canaryNow);
  const perCase = i.cases.map((c) => ({ case: c.key, label: c.label, bytes: c.bytes, job_seconds: jobSeconds(c, i.profile, slowdown), expected_rounds: whole.get(c.key)! }));
  const secondsFor = (keys: Set<string> | null, r: (key: string) => number) =>
    perCase.filter((c) => !keys || keys.has(c.case)).reduce((a, c) => a + c.job_seconds * i.sides * (r(c.case) + i.warmup), 0);
  return {
    cases: i.cases.length,
    sides: i.sides,
    bytes_per_round: i.cases.reduce((a, c) => a + 2 * c.bytes * c.concurrency * i.sides, 0),
    rounds,
    seconds: { least: secondsFor(null, () => rounds.least), expected: secondsFor(null, (k) => whole.get(k)!), most: secondsFor(null, () => rounds.most) },
    per_case: perCase,
    // A shard pools only the cases it runs: one of 1 case stops by its own rule alone (8%: the cap, not the
    // whole matrix's 24), so a shard of few cases plans itself longer than its share of the matrix.
    shards: i.shards.map((s) => ({
      total: s.total,
      expected_seconds: Math.max(...s.cases.map((keys) => {
        const per = expectedFor(keys);
        return secondsFor(new Set(keys), (k) => per.get(k)!);
      })),
      most_seconds: Math.max(...s.cases.map((keys) => secondsFor(new Set(keys), () => rounds.most))),
    })),
    profile: i.profile,
    slowdown,
    canary_now_seconds: i.canaryNow,
  };
}

/** "1 h 05 min", "12 min", "40 s". */
export function duration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const min = Math.round(seconds / 60);
  return min < 60 ? `${min} min` : `${Math.floor(min / 60)} h ${String(min % 60).padStart(2, '0')} min`;
}

/** " (100MiB 9.9%, 500MiB 3.5%)": the profile's per-size SDs of the plan's sizes, when it has any. */
function bySize(p: PlanRecord): string {
  const sizes = [...new Set(p.per_case.map((c) => c.bytes))].filter((b) => p.profile.paired_sd_pct_by_size?.[String(b)] !== undefined).sort((a, b) => a - b);
  return sizes.length ? ` (${sizes.map((b) => `${formatBytes(b)} ${p.profile.paired_sd_pct_by_size![String(b)].toFixed(1)}%`).join(', ')})` : '';
}

export function renderPlan(p: PlanRecord): string {
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  const lines = [
    `plan: ${p.cases} case${p.cases === 1 ? '' : 's'} x ${p.sides} side${p.sides === 1 ? '' : 's'}; one round moves ${gib(p.bytes_per_round)} (uploads and verification downloads)`,
    ...p.per_case.map((c) => `  ${c.label}: ${c.job_seconds.toFixed(1)} s a job, ${(c.job_seconds * p.sides).toFixed(1)} s a round, ${c.expected_rounds} rounds expected`),
    `rounds per case: least ${p.rounds.least}, expected ${p.rounds.expected} (the last case), most ${p.rounds.most} (plus warm-up)`,
    `wall time here: least ${duration(p.seconds.least)}, expected ${duration(p.seconds.expected)}, most ${duration(p.seconds.most)}`,
    ...p.shards.map((s) => `  with --shard k/${s.total}: the heaviest shard expected ${duration(s.expected_seconds)}, at most ${duration(s.most_seconds)}`),
    `from: ${p.profile.source}: upload ${p.profile.upload_mib_s.toFixed(0)} MiB/s, download ${p.profile.download_mib_s.toFixed(0)} MiB/s, ` +
      `${p.profile.job_overhead_seconds.toFixed(1)} s a job besides, per-round paired SD ${p.profile.paired_sd_pct.toFixed(1)}%${bySize(p)}`,
    ...(p.slowdown !== 1 ? [`machine now: canary ${p.canary_now_seconds!.toFixed(3)} s against ${p.profile.canary_cpu_seconds!.toFixed(3)} s then, so times above are x${p.slowdown.toFixed(2)} the profile's`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

export interface CaseProgress {
  key: string;
  /** Measured rounds done (every side). */
  rounds: number;
  stopped: boolean;
  /** Mean seconds of this case's jobs so far; null before its first. */
  jobSeconds: number | null;
}

/**
 * Seconds left for the whole run: every case not stopped runs to the later of
 * its expected rounds and its next look (the cap at most), each round `sides`
 * jobs at the case's measured pace (the plan's before it has one); a case not
 * started also runs its warm-up.
 */
export function timeLeft(p: PlanRecord, progress: readonly CaseProgress[], looks: readonly number[] | null, warmup: number): number {
  const byKey = new Map(progress.map((c) => [c.key, c]));
  let left = 0;
  for (const c of p.per_case) {
    const g = byKey.get(c.case);
    if (g?.stopped) continue;
    const done = g?.rounds ?? 0;
    const next = looks ? (looks.find((l) => l > done) ?? looks[looks.length - 1]) : p.rounds.most;
    const target = Math.min(p.rounds.most, Math.max(c.expected_rounds, next));
    const pending = Math.max(0, target - done) + (g ? 0 : warmup);
    left += pending * p.sides * (g?.jobSeconds ?? c.job_seconds);
  }
  return left;
}
