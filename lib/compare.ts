// Compares two runs' rows, case by case, into a Comparison: per metric the
// medians, spread, change and Mann-Whitney p-value, a throughput verdict and
// a failure verdict per case (benchstat style), cases present on one side
// only, summary counts, the geometric mean of throughput ratios and warnings
// about differing settings.
//
//   const c = compareRuns(base, cand, { alpha: 0.05, noisePct: 3 })
//   c.exitCode  // 0 nothing regressed, 1 a case slower or failing more often
//
// Pure: the runs come in already loaded (lib/load-run.ts).
import type { RawRow } from './results.ts';
import type { RunConfig } from './load-run.ts';
import { caseSide, groupCases, throughputOf, warmupFor, type CaseSide } from './cases.ts';
import { cvPct, geomean, mannWhitney, max, median, min, minPossibleP, spreadPct } from './stats.ts';

export interface Thresholds {
  /** A change is significant only when p < alpha. */
  alpha: number;
  /** Changes smaller than this (in percent of the baseline median) are noise. */
  noisePct: number;
}
export const DEFAULT_THRESHOLDS: Thresholds = { alpha: 0.05, noisePct: 3 };

/** Above this coefficient of variation of a case's throughput, the comparison warns of noise. */
export const NOISY_CV_PCT = 10;
/** Above this median host CPU pressure during uploads, a run was paced by other load on the machine. */
export const CONTENDED_PRESSURE_PCT = 25;

/** The one place a change becomes a verdict: '~' unless significant and above the noise threshold. */
export function verdict(changePct: number | null, p: number, better: 'higher' | 'lower', t: Thresholds): '~' | 'better' | 'worse' {
  if (changePct === null || p >= t.alpha || Math.abs(changePct) < t.noisePct) return '~';
  return changePct > 0 === (better === 'higher') ? 'better' : 'worse';
}

export interface MetricDef {
  key: 'throughput_mib_s' | 'duration_seconds' | 'processing_seconds' | 'peak_memory_bytes' | 'server_peak_rss_bytes';
  title: string;
  unit: 'MiB/s' | 's' | 'MiB';
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
  changePct: number | null;
  p: number | null;
  /** '~', one of metric.words, 'too few iterations', or null when a side has no value. */
  verdict: string | null;
}

/** Throughput of the measured successes: one of METRICS[0].words, '~', 'too few iterations', or 'no data' when a side has none. */
export type CaseVerdict = '~' | 'faster' | 'slower' | 'too few iterations' | 'no data';

/** Failure rate, candidate against baseline, warm-up included: 'regressed' from none, 'fixed' to none. */
export type FailureVerdict = 'regressed' | 'fixed' | 'fails more' | 'fails less' | 'still failing';

export interface CaseComparison {
  fileSize: string;
  fileSizeBytes: number;
  memoryLimit: string;
  memoryLimitMb: number;
  base: CaseSide;
  cand: CaseSide;
  metrics: MetricComparison[];
  verdict: CaseVerdict;
  /** null when neither side failed. */
  failures: FailureVerdict | null;
  /** Distinct exit reasons of the candidate's failures. */
  newExitReasons: string[];
}

export interface OneSideCase {
  fileSize: string;
  memoryLimit: string;
  side: 'baseline' | 'candidate';
  iterations: number;
}

export interface RunInput {
  name: string;
  config: RunConfig;
  rows: RawRow[];
}

export interface Comparison {
  base: RunInput;
  cand: RunInput;
  thresholds: Thresholds;
  cases: CaseComparison[];
  onlyOneSide: OneSideCase[];
  counts: Record<'faster' | 'slower' | 'unchanged' | 'tooFew' | 'fixed' | 'failsLess' | 'newlyFailed' | 'failsMore' | 'stillFailing', number>;
  /** Geometric mean of candidate / baseline median throughput over cases with both; null when none. */
  throughputGeomean: number | null;
  geomeanCases: number;
  /** Cases whose samples are too small for p to reach alpha: how many, the lowest p any could reach, the iterations (warm-up included) that would do. */
  inconclusive: { cases: number; minP: number; iterationsNeeded: number } | null;
  warnings: string[];
  /** 0 nothing regressed, 1 a case slower (significant), newly failed or failing more often. */
  exitCode: 0 | 1;
}

/** A metric's value for a successful row; throughput is derived when the column is empty. */
export function metricValue(r: RawRow, key: MetricDef['key']): number | null {
  return key === 'throughput_mib_s' ? throughputOf(r) : r[key];
}

function summarize(xs: number[]): Summary | null {
  if (xs.length === 0) return null;
  return { n: xs.length, median: median(xs), min: min(xs), max: max(xs), spreadPct: spreadPct(xs) };
}

function compareMetric(metric: MetricDef, base: RawRow[], cand: RawRow[], t: Thresholds): MetricComparison {
  const values = (rows: RawRow[]) => rows.map((r) => metricValue(r, metric.key)).filter((v): v is number => v !== null);
  const a = values(base);
  const b = values(cand);
  const bs = summarize(a);
  const cs = summarize(b);
  if (!bs || !cs) return { metric, base: bs, cand: cs, changePct: null, p: null, verdict: null };
  const changePct = bs.median !== 0 ? ((cs.median - bs.median) / Math.abs(bs.median)) * 100 : cs.median === 0 ? 0 : null;
  const p = mannWhitney(a, b).p;
  let word: string;
  if (minPossibleP(a.length, b.length) >= t.alpha) word = 'too few iterations';
  else {
    const v = verdict(changePct, p, metric.better, t);
    word = v === '~' ? '~' : v === 'better' ? metric.words[0] : metric.words[1];
  }
  return { metric, base: bs, cand: cs, changePct, p, verdict: word };
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

export function compareRuns(base: RunInput, cand: RunInput, t: Thresholds = DEFAULT_THRESHOLDS): Comparison {
  const baseCases = groupCases(base.rows);
  const candCases = groupCases(cand.rows);
  const cases: CaseComparison[] = [];
  const onlyOneSide: OneSideCase[] = [];
  for (const [k, rows] of baseCases) {
    const other = candCases.get(k);
    if (!other) {
      onlyOneSide.push({ fileSize: rows[0].file_size, memoryLimit: rows[0].memory_limit, side: 'baseline', iterations: rows.length });
      continue;
    }
    const b = caseSide(rows, base.config);
    const c = caseSide(other, cand.config);
    const metrics = METRICS.map((m) => compareMetric(m, b.successes, c.successes, t));
    cases.push({
      fileSize: rows[0].file_size,
      fileSizeBytes: rows[0].file_size_bytes,
      memoryLimit: rows[0].memory_limit,
      memoryLimitMb: rows[0].memory_limit_mb,
      base: b,
      cand: c,
      metrics,
      // Failures do not hide throughput: the successes left on both sides are still compared.
      verdict: (metrics[0].verdict ?? 'no data') as CaseVerdict,
      failures: failureVerdict(b, c),
      newExitReasons: [...new Set(c.failures.map((r) => r.exit_reason))].sort(),
    });
  }
  for (const [k, rows] of candCases) {
    if (!baseCases.has(k)) {
      onlyOneSide.push({ fileSize: rows[0].file_size, memoryLimit: rows[0].memory_limit, side: 'candidate', iterations: rows.length });
    }
  }
  cases.sort((x, y) => x.memoryLimitMb - y.memoryLimitMb || x.fileSizeBytes - y.fileSizeBytes);

  const count = (v: CaseVerdict | FailureVerdict) => cases.filter((c) => c.verdict === v || c.failures === v).length;
  const counts = {
    faster: count('faster'),
    slower: count('slower'),
    unchanged: count('~'),
    tooFew: count('too few iterations'),
    fixed: count('fixed'),
    failsLess: count('fails less'),
    newlyFailed: count('regressed'),
    failsMore: count('fails more'),
    stillFailing: count('still failing'),
  };
  const ratios = cases
    .map((c) => c.metrics[0])
    .filter((m) => m.base && m.cand && m.base.median > 0 && m.cand.median > 0)
    .map((m) => m.cand!.median / m.base!.median);
  const inconclusive = inconclusiveOf(cases, cand, t);

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
    warnings: warnings(base, cand, cases, t, inconclusive),
    exitCode: counts.slower > 0 || counts.newlyFailed > 0 || counts.failsMore > 0 ? 1 : 0,
  };
}

function inconclusiveOf(cases: CaseComparison[], cand: RunInput, t: Thresholds): Comparison['inconclusive'] {
  const tooFew = cases.filter((c) => c.verdict === 'too few iterations');
  if (tooFew.length === 0) return null;
  const minP = min(tooFew.map((c) => minPossibleP(c.base.successes.length, c.cand.successes.length)));
  const iterations = cand.config.matrix?.iterations ?? new Set(tooFew[0].cand.rows.map((r) => r.iteration)).size;
  // A 1-iteration run has no warm-up, but --iterations N > 1 brings the matrix's (by default 1) back: count it.
  const warm = iterations <= 1 ? 1 : warmupFor(cand.config, iterations);
  return { cases: tooFew.length, minP, iterationsNeeded: iterationsNeeded(t.alpha, warm) };
}

/** Settings that make two runs incomparable when they differ, as [label, value]. */
function settings(c: RunConfig): [string, unknown][] {
  return [
    // The suite's own code includes the client and the stand-in, so a different commit can move the numbers.
    ['suite commit', c.suite_git?.commit],
    ['provider', c.provider],
    ['iterations', c.matrix?.iterations],
    ['warm-up iterations', c.matrix?.warmup_iterations],
    ['file sizes', c.matrix?.sizes?.map((s) => s.label).join(', ')],
    ['memory limits (MB)', c.matrix?.memory_limits_mb?.join(', ')],
    ['upload timeout (s)', c.matrix?.upload_timeout_seconds],
    ['host', c.host?.hostname],
    ['CPU', c.host?.cpu_model],
    ['cores', c.host?.cores],
    ['kernel', c.host?.kernel],
    ['host memory (bytes)', c.host?.memory_bytes],
  ];
}

function warnings(base: RunInput, cand: RunInput, cases: CaseComparison[], t: Thresholds, inconclusive: Comparison['inconclusive']): string[] {
  const out: string[] = [];
  for (const [side, run] of [['baseline', base], ['candidate', cand]] as const) {
    if (Object.keys(run.config).length === 0) {
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
    const c = cases.find((k) => k.verdict === 'too few iterations')!;
    const n1 = c.base.successes.length;
    const n2 = c.cand.successes.length;
    out.push(
      `Too few iterations for any p-value to reach alpha ${t.alpha} in ${inconclusive.cases} case(s): with ${n1} v ${n2} measured ` +
        `iterations the smallest possible p is ${minPossibleP(n1, n2).toFixed(3)}, so no change there can be called significant. ` +
        `Run with --iterations ${inconclusive.iterationsNeeded} or more (warm-up included).`,
    );
  }
  return out;
}
