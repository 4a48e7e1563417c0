// Compares two runs' rows, case by case, into a Comparison: per metric the
// medians and spread, the change with its 95% interval (Hodges-Lehmann, on
// the log scale: paired by iteration when both runs are sides of one
// interleaved run, else unpaired), p and Holm-adjusted p across the cases, a
// verdict per metric (lib/stats/verdict.ts) and a failure verdict per case, cases
// present on one side only, summary counts, the geometric mean of throughput
// ratios and warnings about differing settings.
//
//   const c = compareRuns(base, cand, { alpha: 0.05, noisePct: 3 })
//   c.exitCode  // 0 nothing regressed, 1 a case slower or failing more often
//
// Pure: the runs come in already loaded (lib/load-run.ts).
import type { CanaryRow, RawRow } from '../results.ts';
import type { RunRecord } from '../run-record.ts';
import {
  caseKey, caseSide, caseSizeLabel, cpuSecondsPerGiB, groupCases, spaceAmplification, throughputOf, warmupFor, writeAmplification, type CaseSide,
} from '../cases.ts';
import { holm, pairedChange, unpairedChange, type Change } from './effect.ts';
import type { CaseStop } from './adaptive.ts';
import { serialCheck, serialP, widen, type SerialCheck } from './serial.ts';
import { pooledVerdicts, stoppedBy, type CaseRounds, type PooledRule, type PooledSummary } from './pooled.ts';
import { decideAtLook, decideFinal, finalLevel, lastLookReached, lookLevels, sameAlpha, type StoppingRule } from './sequential.ts';
import { cvPct, geomean, max, median, min, minPossibleP, spreadPct } from './stats.ts';
import { changeVerdict, detectable, sd, type Detectable } from './verdict.ts';
import { judgmentFor, type JudgmentRule } from './judgment.ts';

export interface Thresholds {
  /** Family-wise: a change is significant only when its Holm-adjusted p < alpha. */
  alpha: number;
  /** Changes inside ±noisePct percent are noise. */
  noisePct: number;
}
export const DEFAULT_THRESHOLDS: Thresholds = { alpha: 0.05, noisePct: 3 };

/** Above this coefficient of variation of a case's throughput, the comparison warns of noise. */
export const NOISY_CV_PCT = 10;
/** Above this median host CPU pressure during uploads, a run was paced by other load on the machine. */
export const CONTENDED_PRESSURE_PCT = 25;

export interface MetricDef {
  key: 'throughput_mib_s' | 'duration_seconds' | 'processing_seconds' | 'peak_memory_bytes' | 'server_peak_rss_bytes'
    | 'cpu_seconds_per_gib' | 'write_amplification' | 'space_amplification' | 'download_mib_s';
  title: string;
  unit: 'MiB/s' | 's' | 'MiB' | 's/GiB' | '×';
  better: 'higher' | 'lower';
  /** Words for a better and a worse verdict. */
  words: [string, string];
}

export const METRICS: MetricDef[] = [
  { key: 'throughput_mib_s', title: 'Throughput', unit: 'MiB/s', better: 'higher', words: ['faster', 'slower'] },
  { key: 'duration_seconds', title: 'Duration', unit: 's', better: 'lower', words: ['faster', 'slower'] },
  { key: 'processing_seconds', title: 'Processing time, last byte sent to response', unit: 's', better: 'lower', words: ['faster', 'slower'] },
  { key: 'peak_memory_bytes', title: 'Peak memory of the environment', unit: 'MiB', better: 'lower', words: ['less', 'more'] },
  { key: 'server_peak_rss_bytes', title: 'Server peak RSS', unit: 'MiB', better: 'lower', words: ['less', 'more'] },
  // What the server spends (lib/providers/spend.ts): steadier than wall time on a shared machine.
  { key: 'cpu_seconds_per_gib', title: 'Server CPU per GiB uploaded (user + system)', unit: 's/GiB', better: 'lower', words: ['less', 'more'] },
  { key: 'write_amplification', title: 'Write amplification, bytes written / bytes uploaded', unit: '×', better: 'lower', words: ['less', 'more'] },
  { key: 'space_amplification', title: 'Space amplification, data folder / bytes uploaded', unit: '×', better: 'lower', words: ['less', 'more'] },
  { key: 'download_mib_s', title: 'Verification download', unit: 'MiB/s', better: 'higher', words: ['faster', 'slower'] },
];

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  spreadPct: number;
}

export interface MetricComparison {
  metric: MetricDef;
  base: Summary | null;
  cand: Summary | null;
  /** Candidate against baseline (log scale, with its 95% interval and p); null when a side has no positive value. */
  change: Change | null;
  /** The change and its interval in percent (the bounds may be -100 and Infinity when unbounded). */
  changePct: number | null;
  loPct: number | null;
  hiPct: number | null;
  p: number | null;
  /** p adjusted for the family (Holm across the cases; for a sequential run, to the look's level). */
  pAdjusted: number | null;
  /** One of metric.words, 'same', 'inconclusive', or null when there is no change to judge. */
  verdict: string | null;
  /** For an inconclusive verdict: the smallest change this sample could detect, and the iterations that would detect the noise band. */
  detectable: Detectable | null;
}

/** Throughput of the measured successes: faster, slower, same, inconclusive, or 'no data' when a side has none. */
export type CaseVerdict = 'faster' | 'slower' | 'same' | 'inconclusive' | 'no data';

/** Failure rate, candidate against baseline, warm-up included: 'regressed' from none, 'fixed' to none. */
export type FailureVerdict = 'regressed' | 'fixed' | 'fails more' | 'fails less' | 'still failing';

export interface CaseComparison {
  fileSize: string;
  fileSizeBytes: number;
  /** Uploads started together. */
  concurrency: number;
  memoryLimit: string;
  memoryLimitMb: number;
  base: CaseSide;
  cand: CaseSide;
  metrics: MetricComparison[];
  verdict: CaseVerdict;
  /** Paired: iterations of the same number ran back to back in one interleaved run; the pairs compared. */
  paired: boolean;
  /** For a run stopped by a group-sequential rule: the rounds judged (the last look reached). */
  rounds: number | null;
  /** Adaptive rounds with the pooled rule on: which rule stopped the case (config.json ab.stops); null otherwise. */
  stoppedBy?: ReturnType<typeof stoppedBy>;
  /** null when neither side failed. */
  failures: FailureVerdict | null;
  /** Distinct exit reasons of the candidate's failures. */
  newExitReasons: string[];
  /** matrix.yaml's judgment: this case's own noise band (percent), or null for the comparison's. */
  noisePct: number | null;
  /** matrix.yaml's judgment: why this case is left out of the verdict (its figures are still shown), or null. */
  ignored: string | null;
}

export interface OneSideCase {
  fileSize: string;
  memoryLimit: string;
  side: 'baseline' | 'candidate';
  iterations: number;
}

export interface RunInput {
  name: string;
  /** null when the run's folder has no config.json. */
  config: RunRecord | null;
  rows: RawRow[];
  /** The machine canary's timings (canary.csv); absent or empty for runs made before it existed. */
  canary?: CanaryRow[];
}

/** How much slower (+) or faster (-) the machine itself ran the canary in the candidate than in the baseline, in percent of time. */
export interface MachineShift {
  cpuPct: number;
  diskPct: number;
  /** Throughput verdicts (faster/slower) that the shift could explain, made inconclusive. */
  explained: number;
}

export interface Comparison {
  base: RunInput;
  cand: RunInput;
  thresholds: Thresholds;
  cases: CaseComparison[];
  onlyOneSide: OneSideCase[];
  counts: Record<'faster' | 'slower' | 'same' | 'inconclusive' | 'fixed' | 'failsLess' | 'newlyFailed' | 'failsMore' | 'stillFailing' | 'ignored', number>;
  /** Geometric mean of candidate / baseline median throughput over cases with both; null when none. */
  throughputGeomean: number | null;
  geomeanCases: number;
  /** Inconclusive cases: how many, the smallest detectable change (percent) among them, and the iterations (warm-up included) that would detect the noise band in all. */
  /** Two separate runs whose canaries differ by more than the noise band; null when they agree, or for interleaved sides. */
  machineShift: MachineShift | null;
  inconclusive: { cases: number; detectablePct: number | null; iterationsNeeded: number | null } | null;
  /** The serial-correlation check of the paired throughput ratios (lib/stats/serial.ts); null with fewer than SERIAL_MIN_TOTAL_ROUNDS rounds in its cases of SERIAL_MIN_ROUNDS. */
  serial: SerialCheck | null;
  /** The stopping rule the runs were judged by, when they recorded one. */
  stoppingRule: StoppingRule | null;
  /** The matrix-level same (lib/stats/pooled.ts) of a run that recorded its rule: the pooled throughput change; null otherwise. */
  pooled: PooledSummary | null;
  /**
   * Of the metrics that changed (a better or worse verdict), the one with the least spread (sd of its
   * log values, as a percentage): the figure that tells the two runs apart most surely. null when none changed.
   */
  steadiestChange: { metric: MetricDef; fileSize: string; memoryLimit: string; verdict: string; changePct: number; spreadPct: number } | null;
  warnings: string[];
  /** 0 nothing regressed, 1 a case slower (after the family-wise rule), newly failed or failing more often. */
  exitCode: 0 | 1;
}

/** A metric's value for a successful row; throughput is derived when the column is empty. */
export function metricValue(r: RawRow, key: MetricDef['key']): number | null {
  switch (key) {
    case 'throughput_mib_s': return throughputOf(r);
    case 'cpu_seconds_per_gib': return cpuSecondsPerGiB(r);
    case 'write_amplification': return writeAmplification(r);
    case 'space_amplification': return spaceAmplification(r);
    default: return r[key];
  }
}

function summarize(xs: number[]): Summary | null {
  if (xs.length === 0) return null;
  return { n: xs.length, median: median(xs), min: min(xs), max: max(xs), spreadPct: spreadPct(xs) };
}

/** log(candidate / baseline) of a metric for each iteration number both sides measured. */
function logRatios(base: RawRow[], cand: RawRow[], key: MetricDef['key']): number[] {
  const byIteration = new Map(base.map((r) => [r.iteration, metricValue(r, key)]));
  return cand.flatMap((r) => {
    const x = byIteration.get(r.iteration);
    const y = metricValue(r, key);
    return x && y && x > 0 && y > 0 ? [Math.log(y / x)] : [];
  });
}

/** A metric's summaries and change, before the family-wise adjustment. */
function measureMetric(metric: MetricDef, base: RawRow[], cand: RawRow[], paired: boolean, alpha: number): MetricComparison {
  const values = (rows: RawRow[]) => rows.map((r) => metricValue(r, metric.key)).filter((v): v is number => v !== null);
  const a = values(base);
  const b = values(cand);
  const bs = summarize(a);
  const cs = summarize(b);
  const none = { change: null, changePct: null, loPct: null, hiPct: null, p: null, pAdjusted: null, verdict: null, detectable: null };
  if (!bs || !cs || [...a, ...b].some((v) => !(v > 0))) return { metric, base: bs, cand: cs, ...none };
  let change: Change;
  if (paired) {
    const ratios = logRatios(base, cand, metric.key);
    if (ratios.length === 0) return { metric, base: bs, cand: cs, ...none };
    change = pairedChange(ratios, alpha);
  } else {
    change = unpairedChange(a, b, alpha);
  }
  return { metric, base: bs, cand: cs, ...none, change, changePct: pctOf(change.estimate), loPct: pctOf(change.lo), hiPct: pctOf(change.hi), p: change.p };
}

const pctOf = (x: number) => (Math.exp(x) - 1) * 100;

/** Spread of the log values the change came from: sd of the paired log ratios, or the pooled within-side sd. */
function logSpread(m: MetricComparison, base: RawRow[], cand: RawRow[], paired: boolean): { sd: number; n: number } {
  const logs = (rows: RawRow[]) => rows.map((r) => metricValue(r, m.metric.key)).filter((v): v is number => v !== null && v > 0).map(Math.log);
  if (paired) {
    const d = logRatios(base, cand, m.metric.key);
    return { sd: sd(d), n: d.length };
  }
  const [a, b] = [logs(base), logs(cand)];
  const pooled = Math.sqrt((sd(a) ** 2 * (a.length - 1) + sd(b) ** 2 * (b.length - 1)) / Math.max(1, a.length + b.length - 2));
  return { sd: pooled, n: Math.floor((2 * a.length * b.length) / (a.length + b.length)) };
}

function failureVerdict(base: CaseSide, cand: CaseSide): FailureVerdict | null {
  const b = base.failures.length;
  const c = cand.failures.length;
  if (b === 0 && c === 0) return null;
  if (b === 0) return 'regressed';
  if (c === 0) return 'fixed';
  // Rates, not counts: the sides may have run different numbers of iterations (cross-multiplied to stay exact).
  const diff = c * base.rows.length - b * cand.rows.length;
  return diff > 0 ? 'fails more' : diff < 0 ? 'fails less' : 'still failing';
}

/** The smallest iterations per side (warm-up included) for which p < alpha is possible. */
export function iterationsNeeded(alpha: number, warmup: number): number {
  let n = 1;
  while (minPossibleP(n, n) >= alpha && n < 1000) n++;
  return n + warmup;
}

/** Both runs are sides of one interleaved run (config.json's `ab`, same parent folder): iteration i of each ran in round i. */
export function pairedRuns(a: RunRecord | null, b: RunRecord | null): boolean {
  const [x, y] = [a?.ab, b?.ab];
  return !!x?.parent && x.parent === y?.parent && x.this_ref !== y.this_ref;
}

const uniqueIterations = (rows: RawRow[]) => new Set(rows.map((r) => r.iteration)).size === rows.length;

export function compareRuns(base: RunInput, cand: RunInput, t: Thresholds = DEFAULT_THRESHOLDS): Comparison {
  const baseCases = groupCases(base.rows);
  const candCases = groupCases(cand.rows);
  const paired = pairedRuns(base.config, cand.config);
  const rule = paired ? (base.config?.ab?.stopping_rule ?? null) : null;
  // The candidate is the run under judgment; a baseline of a separate run may have had other rules.
  const rules: JudgmentRule[] = cand.config?.matrix.judgment ?? [];
  const cases: CaseComparison[] = [];
  const onlyOneSide: OneSideCase[] = [];
  for (const [k, rows] of baseCases) {
    const other = candCases.get(k);
    if (!other) {
      onlyOneSide.push({ fileSize: caseSizeLabel(rows[0]), memoryLimit: rows[0].memory_limit, side: 'baseline', iterations: rows.length });
      continue;
    }
    const b = caseSide(rows, base.config);
    const c = caseSide(other, cand.config);
    const casePaired = paired && uniqueIterations(b.successes) && uniqueIterations(c.successes);
    cases.push({
      fileSize: caseSizeLabel(rows[0]),
      fileSizeBytes: rows[0].file_size_bytes,
      concurrency: rows[0].concurrency,
      memoryLimit: rows[0].memory_limit,
      memoryLimitMb: rows[0].memory_limit_mb,
      base: b,
      cand: c,
      // Failures do not hide throughput: the successes left on both sides are still compared.
      // Intervals at 1 - alpha, so one excludes 0 whenever p < alpha.
      metrics: METRICS.map((m) => measureMetric(m, b.successes, c.successes, casePaired, t.alpha)),
      verdict: 'no data',
      paired: casePaired,
      rounds: null,
      failures: failureVerdict(b, c),
      newExitReasons: [...new Set(c.failures.map((r) => r.exit_reason))].sort(),
      ...judgmentFor(rules, { fileSizeBytes: rows[0].file_size_bytes, memoryLimitMb: rows[0].memory_limit_mb, concurrency: rows[0].concurrency }),
    });
  }
  for (const [k, rows] of candCases) {
    if (!baseCases.has(k)) {
      onlyOneSide.push({ fileSize: caseSizeLabel(rows[0]), memoryLimit: rows[0].memory_limit, side: 'candidate', iterations: rows.length });
    }
  }
  cases.sort((x, y) => x.memoryLimitMb - y.memoryLimitMb || x.fileSizeBytes - y.fileSizeBytes || x.concurrency - y.concurrency);

  // Family-wise: per metric, Holm across the cases that have a change.
  METRICS.forEach((_, i) => {
    const judged = cases.filter((k) => k.metrics[i].change);
    const adjusted = holm(judged.map((k) => k.metrics[i].p!));
    judged.forEach((k, j) => judge(k, i, adjusted[j], t, judged.length));
  });
  // The candidate's side in the run whose first side is the baseline: what its stops recorded for this comparison; null otherwise.
  const candSide = base.config?.ab?.this_ref === 0 && cand.config?.ab ? cand.config.ab.this_ref : null;
  const stops = base.config?.ab?.stops ?? [];
  const stopOf = (k: CaseComparison) => stops.find((s) => s.case === comparisonKey(k));
  if (rule) for (const k of cases) if (k.paired) judgeSequential(k, rule, endedAt(stopOf(k), candSide), factorAt(stopOf(k), candSide));
  const serial = judgeSerial(cases, rule, t, (k) => endedAt(stopOf(k), candSide) !== null);
  const pooled = rule && base.config?.ab?.pooled_rule ? judgePooled(cases, base.config.ab.pooled_rule, stops, serial?.inflation ?? 1, candSide) : null;
  const machineShift = paired ? null : canaryShift(base.canary ?? [], cand.canary ?? [], t.noisePct);
  if (machineShift) machineShift.explained = explainedByMachine(cases, machineShift, t.noisePct);
  for (const k of cases) {
    const v = k.metrics[0].verdict;
    k.verdict = v === null ? 'no data' : (v as CaseVerdict);
  }

  // An ignored case keeps its figures and verdicts, but counts for nothing.
  const judged = cases.filter((c) => c.ignored === null);
  const count = (v: CaseVerdict | FailureVerdict) => judged.filter((c) => c.verdict === v || c.failures === v).length;
  const counts = {
    faster: count('faster'),
    slower: count('slower'),
    same: count('same'),
    inconclusive: count('inconclusive'),
    fixed: count('fixed'),
    failsLess: count('fails less'),
    newlyFailed: count('regressed'),
    failsMore: count('fails more'),
    stillFailing: count('still failing'),
    ignored: cases.length - judged.length,
  };
  const ratios = cases
    .map((c) => c.metrics[0])
    .filter((m) => m.base && m.cand && m.base.median > 0 && m.cand.median > 0)
    .map((m) => m.cand!.median / m.base!.median);
  const inconclusive = inconclusiveOf(judged, cand, t);
  // Picking the steadiest of the metrics is a choice among METRICS.length: a change counts only at alpha / METRICS.length (Bonferroni).
  const changed = judged.flatMap((k) => k.metrics
    .filter((m) => m.verdict !== null && m.metric.words.includes(m.verdict) && m.changePct !== null && (m.pAdjusted ?? 1) * METRICS.length < t.alpha)
    .map((m) => ({ k, m, sd: logSpread(m, k.base.successes, k.cand.successes, k.paired).sd })));
  const steadiest = changed.length ? changed.reduce((a, b) => (b.sd < a.sd ? b : a)) : null;

  return {
    base,
    cand,
    thresholds: t,
    cases,
    onlyOneSide,
    counts,
    throughputGeomean: ratios.length > 0 ? geomean(ratios) : null,
    geomeanCases: ratios.length,
    inconclusive,
    stoppingRule: rule,
    pooled,
    serial,
    steadiestChange: steadiest && {
      metric: steadiest.m.metric, fileSize: steadiest.k.fileSize, memoryLimit: steadiest.k.memoryLimit,
      verdict: steadiest.m.verdict!, changePct: steadiest.m.changePct!, spreadPct: (Math.exp(steadiest.sd) - 1) * 100,
    },
    machineShift,
    warnings: [...machineWarnings(machineShift), ...serialWarnings(serial, rule), ...warnings(base, cand, cases, t, inconclusive)],
    exitCode: counts.slower > 0 || counts.newlyFailed > 0 || counts.failsMore > 0 ? 1 : 0,
  };
}

/** A metric's verdict from its Holm-adjusted p; an inconclusive one says what the sample could have detected. */
function judge(k: CaseComparison, i: number, pAdjusted: number, t: Thresholds, family: number): void {
  const m = k.metrics[i];
  const band = { alpha: t.alpha, noisePct: k.noisePct ?? t.noisePct };
  const v = changeVerdict(m.change!, pAdjusted, band, m.metric.better);
  m.pAdjusted = pAdjusted;
  m.verdict = v === 'better' ? m.metric.words[0] : v === 'worse' ? m.metric.words[1] : v;
  if (v !== 'inconclusive') return;
  // The strictest level Holm may ask of a case: alpha / family; and the fewest iterations at which the exact test can reach it.
  const level = t.alpha / family;
  const spread = logSpread(m, k.base.successes, k.cand.successes, k.paired);
  m.detectable = detectable(spread.sd, spread.n, k.paired, level, band.noisePct, fewestToReach(level, k.paired));
}

/** The fewest measured iterations a side at which the exact test can reach `level` at all. */
function fewestToReach(level: number, paired: boolean): number {
  let need = 1;
  while ((paired ? 2 / 2 ** need : minPossibleP(need, need)) >= level && need < 1000) need++;
  return need;
}

/**
 * The pooled rule's hook (lib/stats/pooled.ts): the throughput of the cases at the
 * rounds they were judged at, pooled; an inconclusive case the pool lets go
 * reads `same`; every case says which rule stopped it.
 */
function judgePooled(cases: CaseComparison[], rule: PooledRule, stops: CaseStop[], inflation: number, side: number | null): PooledSummary | null {
  const judged = cases.filter((k) => k.paired);
  const r = pooledVerdicts(judged.map((k) => ({ key: comparisonKey(k), ratios: judgedRatios(k), verdict: k.metrics[0].verdict as CaseRounds['verdict'] })), rule, inflation);
  for (const k of judged) {
    const key = comparisonKey(k);
    const stop = stops.find((s) => s.case === key);
    k.stoppedBy = comparisonStoppedBy(stop, side);
    // A case the pool let go during the run stays `same`: that look decided it. The re-pool at the end can
    // differ when the run was cut short, another case's last rounds then being between its looks.
    if ((r?.same.has(key) || stop?.state === 'pooled') && k.metrics[0].verdict === 'inconclusive') {
      k.metrics[0].verdict = 'same';
      k.metrics[0].detectable = null;
    }
  }
  return r?.summary ?? null;
}

function serialWarnings(s: SerialCheck | null, rule: StoppingRule | null): string[] {
  if (!s?.present) return [];
  const how = rule?.serial_check
    ? 'The stopping rule checked at each look and read a look with the variance widened by the factor found then (ab.stops variance_factor_by_side); compare-runs judges as it did.'
    : `Every throughput interval is widened ${Math.sqrt(s.inflation).toFixed(2)}x and its p read from the mean's t; verdicts that did not survive are inconclusive.`;
  return [
    `Rounds not independent: consecutive paired throughput ratios are correlated (lag-1 ${s.r1.toFixed(2)} over ${s.cases} case(s), ` +
      `${s.rounds} rounds; z = ${s.z.toFixed(1)}). ${how} Something carries over from round to round: look at the provider and the machine.`,
  ];
}

/**
 * Which rule ended this comparison (the candidate is run side `side`, the baseline side 0): with several servers a
 * case stops when its last comparison ends, and the others ended earlier by their own rule (a verdict) or at the cap.
 */
function comparisonStoppedBy(stop: CaseStop | undefined, side: number | null): ReturnType<typeof stoppedBy> {
  const v = side !== null && side > 0 ? stop?.verdicts[side - 1] : undefined;
  if (!stop || stop.state === 'pooled' || v === undefined) return stoppedBy(stop?.state);
  return v === 'inconclusive' ? 'cap' : 'own rule';
}

/** A compared case's key, as ab.stops and the pooled rule name it. */
export function comparisonKey(k: Pick<CaseComparison, 'fileSizeBytes' | 'memoryLimitMb' | 'concurrency'>): string {
  return caseKey({ bytes: k.fileSizeBytes, memoryMb: k.memoryLimitMb, concurrency: k.concurrency });
}

/** The rounds the run's rule ended this comparison at (the stop's rounds_by_side for the candidate's side); null when not recorded. */
function endedAt(stop: CaseStop | undefined, side: number | null): number | null {
  const at = side !== null && side > 0 ? stop?.rounds_by_side?.[side - 1] : undefined;
  return at === undefined ? null : at;
}

/** The serial check's variance factor the run's rule judged this comparison with; 1 when not recorded. */
function factorAt(stop: CaseStop | undefined, side: number | null): number {
  return (side !== null && side > 0 ? stop?.variance_factor_by_side?.[side - 1] : undefined) ?? 1;
}

/** A paired case's throughput log ratios over all its paired rounds, in round order. */
function pairedRatios(k: CaseComparison): number[] {
  const byRound = (rows: RawRow[]) => [...rows].sort((a, b) => a.iteration - b.iteration);
  return logRatios(byRound(k.base.successes), byRound(k.cand.successes), 'throughput_mib_s');
}

/** The paired ratios up to the rounds the case was judged at. */
function judgedRatios(k: CaseComparison): number[] {
  const ratios = pairedRatios(k);
  return k.rounds === null ? ratios : ratios.slice(0, k.rounds);
}

/**
 * Rounds that are not independent (lib/stats/serial.ts): the check over the
 * paired cases' throughput, at the rounds they were judged at. A rule that
 * checked at its looks (serial_check) judged its stopped comparisons with
 * the factor it found then, as judgeSequential read them again; only a
 * comparison it did not stop is judged here with the factor found now.
 * Otherwise (fixed rounds, or a run from before the rule checked) each
 * throughput verdict is read again from its interval widened by the
 * variance factor and its p from the mean's t with the variance widened
 * alike; a verdict that does not survive becomes inconclusive. null without
 * SERIAL_MIN_TOTAL_ROUNDS rounds in its paired cases of SERIAL_MIN_ROUNDS.
 */
function judgeSerial(cases: CaseComparison[], rule: StoppingRule | null, t: Thresholds, stoppedByRule: (k: CaseComparison) => boolean): SerialCheck | null {
  const paired = cases.filter((k) => k.paired && k.metrics[0].change);
  const series = paired.map(judgedRatios);
  const check = serialCheck(series);
  if (!check?.present) return check;
  for (const [i, k] of paired.entries()) {
    if (rule?.serial_check) {
      if (!stoppedByRule(k)) judgeSequential(k, rule, null, check.inflation);
      continue;
    }
    const m = k.metrics[0];
    const wide = widen(m.change!, check.inflation);
    // The adjusted p keeps its ratio to p (the look's or Holm's adjustment), p read again from the mean.
    const pAdjusted = m.p === null || m.pAdjusted === null ? null : Math.min(1, (m.pAdjusted * serialP(series[i], check.inflation)) / Math.max(m.p, Number.MIN_VALUE));
    const was = m.verdict;
    Object.assign(m, { change: { ...m.change!, ...wide }, loPct: pctOf(wide.lo), hiPct: pctOf(wide.hi), pAdjusted });
    if (was !== 'faster' && was !== 'slower' && was !== 'same') continue;
    // `same` was read from the interval for `same` (the stopping rule's 97.5% one): that one, widened, must lie inside.
    const read = was === 'same' && rule && k.rounds !== null ? widen(pairedChange(series[i], sameAlpha(rule)), check.inflation) : wide;
    const v = changeVerdict(read, pAdjusted ?? 1, { alpha: t.alpha, noisePct: k.noisePct ?? t.noisePct }, 'higher');
    if ((v === 'better' ? 'faster' : v === 'worse' ? 'slower' : v) !== was) m.verdict = 'inconclusive';
  }
  return check;
}

/** Throughput of a run stopped by a group-sequential rule: the decision at the last look its rounds reached. */
function judgeSequential(k: CaseComparison, declared: StoppingRule, recorded: number | null, inflation: number): void {
  // The rule stopped the rounds as declared; only the band the verdict is read with may be the case's own.
  const rule = k.noisePct === null ? declared : { ...declared, noise_pct: k.noisePct };
  const m = k.metrics[0];
  const ratios = pairedRatios(k);
  const at = recorded !== null && recorded > 0 && recorded <= ratios.length ? recorded : null;
  const cap = rule.looks[rule.looks.length - 1];
  // The run recorded the rounds this comparison ended at (ab.stops rounds_by_side): judged there, not again at a later
  // look that another server's comparison went on to. Else: every planned round run, failed ones among them, is the
  // final analysis on all successful rounds, as the run's rule took it; or the last look the rounds reached.
  const ranOut = at !== null
    ? !rule.looks.includes(at)
    : ratios.length > 0 && ratios.length < cap && k.base.measured.length >= cap && k.cand.measured.length >= cap;
  const look = at ?? (ranOut ? ratios.length : lastLookReached(ratios.length, rule));
  if (look === null) {
    m.verdict = 'inconclusive';
    m.pAdjusted = null;
    return;
  }
  const d = ranOut ? decideFinal(ratios.slice(0, look), rule, inflation) : decideAtLook(ratios, look, rule, inflation);
  const change = d.change ?? pairedChange(ratios.slice(0, look), Number((1 - rule.confidence).toFixed(12)));
  Object.assign(m, {
    change, changePct: pctOf(change.estimate), loPct: pctOf(change.lo), hiPct: pctOf(change.hi),
    p: d.p, pAdjusted: d.adjustedP, verdict: d.verdict,
  });
  k.rounds = look;
  if (d.verdict === 'inconclusive') {
    const level = ranOut ? finalLevel(look, rule) : lookLevels(rule).at(-1)!;
    m.detectable = detectable(sd(ratios.slice(0, look)), look, true, level, rule.noise_pct, rule.looks.at(-1)!);
  }
}

function inconclusiveOf(cases: CaseComparison[], cand: RunInput, t: Thresholds): Comparison['inconclusive'] {
  const open = cases.filter((c) => c.verdict === 'inconclusive');
  if (open.length === 0) return null;
  const known = open.map((c) => c.metrics[0].detectable).filter((d): d is Detectable => d !== null);
  const iterations = cand.config?.matrix.iterations ?? new Set(open[0].cand.rows.map((r) => r.iteration)).size;
  // A 1-iteration run has no warm-up, but --iterations N > 1 brings the matrix's (by default 1) back: count it.
  const warm = iterations <= 1 ? 1 : warmupFor(cand.config, iterations);
  return {
    cases: open.length,
    detectablePct: known.length ? min(known.map((d) => d.pct)) : null,
    // Without a spread to go by (one value a side), at least what the exact test needs to reach the level.
    iterationsNeeded: (known.length ? max(known.map((d) => d.iterations)) : fewestToReach(t.alpha / cases.length, open[0].paired)) + warm,
  };
}

/** Settings that make two runs incomparable when they differ, as [label, value]. */
function settings(c: RunRecord | null): [string, unknown][] {
  return [
    // The suite's own code includes the client and the stand-in, so a different commit can move the numbers.
    ['suite commit', c?.suite_git?.commit],
    ['provider', c?.provider],
    ['iterations', c?.matrix.iterations],
    ['warm-up iterations', c?.matrix.warmup_iterations],
    ['file sizes', c?.matrix.sizes.map((s) => s.label).join(', ')],
    ['memory limits (MB)', c?.matrix.memory_limits_mb.join(', ')],
    ['upload timeout (s)', c?.matrix.upload_timeout_seconds],
    ['host', c?.host.hostname],
    ['CPU', c?.host.cpu_model],
    ['cores', c?.host.cores],
    ['kernel', c?.host.kernel],
    ['host memory (bytes)', c?.host.memory_bytes],
  ];
}

function warnings(base: RunInput, cand: RunInput, cases: CaseComparison[], t: Thresholds, inconclusive: Comparison['inconclusive']): string[] {
  const out: string[] = [];
  for (const [side, run] of [['baseline', base], ['candidate', cand]] as const) {
    if (run.config === null) {
      out.push(`The ${side} (${run.name}) has no config.json: its settings are unknown and iteration 1 of each case is taken as warm-up.`);
    } else if (run.config.finished === false) {
      out.push(`The ${side} (${run.name}) did not finish (${run.config.stop_reason ?? 'no reason recorded'}): cases it did not reach are missing.`);
    }
  }
  const a = settings(base.config);
  const b = settings(cand.config);
  const differ = a
    .map(([label, v], i) => [label, v, b[i][1]] as const)
    .filter(([, x, y]) => x !== undefined && y !== undefined && JSON.stringify(x) !== JSON.stringify(y))
    .map(([label, x, y]) => `${label} ${JSON.stringify(x)} vs ${JSON.stringify(y)}`);
  if (differ.length > 0) {
    out.push(`The runs' settings differ (${differ.join('; ')}): differences may come from the setup, not the server.`);
  }
  const cvs = cases.flatMap((c) =>
    (['base', 'cand'] as const)
      .map((side) => ({ c, side, xs: c[side].successes.map((r) => metricValue(r, 'throughput_mib_s')).filter((v): v is number => v !== null) }))
      .filter((x) => x.xs.length >= 2)
      .map((x) => ({ ...x, cv: cvPct(x.xs) })),
  );
  const noisy = cvs.filter((x) => x.cv > NOISY_CV_PCT);
  if (noisy.length > 0) {
    const worst = noisy.reduce((a, b) => (b.cv > a.cv ? b : a));
    out.push(
      `Noisy measurements: ${noisy.length} of ${cvs.length} samples have a throughput coefficient of variation above ${NOISY_CV_PCT}% ` +
        `(worst ${worst.cv.toFixed(0)}%: ${worst.side === 'base' ? 'baseline' : 'candidate'} ${worst.c.fileSize} @ ${worst.c.memoryLimit}). ` +
        `Only large changes can be significant; look for other load on the machine, or run more iterations.`,
    );
  }
  const pressure = (run: RunInput) => {
    const xs = run.rows.map((r) => r.host_cpu_pressure_pct).filter((v): v is number => v !== null);
    return xs.length ? median(xs) : null;
  };
  const [pa, pb] = [pressure(base), pressure(cand)];
  if ((pa ?? 0) > CONTENDED_PRESSURE_PCT || (pb ?? 0) > CONTENDED_PRESSURE_PCT) {
    out.push(
      `Measured under CPU contention: some host task waited for a CPU during a median ${pa?.toFixed(0) ?? '?'}% (baseline) ` +
        `and ${pb?.toFixed(0) ?? '?'}% (candidate) of upload time (host_cpu_pressure_pct). Other load set the pace: ` +
        `a difference may come from the machine; rerun on a quiet machine, or compare refs in one interleaved run (--ref A --ref B).`,
    );
  }
  if (inconclusive) {
    out.push(
      `Inconclusive in ${inconclusive.cases} case(s): the samples cannot tell a ${t.noisePct}% change from noise` +
        (inconclusive.detectablePct !== null ? ` (the smallest change any of them could detect: ${inconclusive.detectablePct.toFixed(1)}%)` : '') +
        (inconclusive.iterationsNeeded !== null ? `. About --iterations ${inconclusive.iterationsNeeded} (warm-up included) would` : '') +
        `; an interleaved run (--ref A --ref B) pairs the rounds and needs fewer.`,
    );
  }
  return out;
}

/**
 * The canaries of two separate runs compared: the median time of each part,
 * candidate against baseline. Only a shift beyond the noise band counts: a
 * machine that changed that much can move any server's figures as much.
 */
export function canaryShift(base: CanaryRow[], cand: CanaryRow[], noisePct: number): MachineShift | null {
  if (base.length === 0 || cand.length === 0) return null;
  const pct = (key: 'cpu_seconds' | 'disk_seconds') => (median(cand.map((r) => r[key])) / median(base.map((r) => r[key])) - 1) * 100;
  const shift = { cpuPct: pct('cpu_seconds'), diskPct: pct('disk_seconds'), explained: 0 };
  return Math.max(Math.abs(shift.cpuPct), Math.abs(shift.diskPct)) > noisePct ? shift : null;
}

/**
 * Throughput verdicts the machine's own change could explain become inconclusive: a change in the
 * direction the machine moved (it got slower: throughput fell) no larger than the machine's change plus
 * the noise band. Returns how many.
 */
function explainedByMachine(cases: CaseComparison[], shift: MachineShift, noisePct: number): number {
  let n = 0;
  for (const k of cases) {
    const m = k.metrics[0];
    if ((m.verdict !== 'faster' && m.verdict !== 'slower') || m.changePct === null) continue;
    // A slower machine (+% time) lowers throughput; take the part of the canary that moved that way most.
    const machine = [shift.cpuPct, shift.diskPct].map((p) => -p).filter((p) => Math.sign(p) === Math.sign(m.changePct!));
    if (machine.length === 0 || Math.abs(m.changePct) > Math.max(...machine.map(Math.abs)) + noisePct) continue;
    m.verdict = 'inconclusive';
    n++;
  }
  return n;
}

function machineWarnings(s: MachineShift | null): string[] {
  if (!s) return [];
  const how = (p: number) => `${Math.abs(p).toFixed(1)}% ${p > 0 ? 'slower' : 'faster'}`;
  return [`The machine itself changed between the runs: its canary (a fixed job with no project code) ran ${how(s.cpuPct)} on CPU and ` +
    `${how(s.diskPct)} on disk in the candidate. ${s.explained} case(s) whose change that could explain are counted inconclusive. ` +
    'Compare interleaved instead (run-tests --ref A --ref B, or --binary A --binary B): both sides then share the machine\'s moods.'];
}
