// The matrix-level `same`: the rounds of every case speak together. Most
// changes touch every case alike or none, so the common change across the
// cases is estimated from all their paired rounds at once (far more rounds
// than any one case has), and a case may stop as `same` when that pooled
// interval lies inside ±noise and the case itself does not stray from it.
//
//   const rule = pooledRule({ noisePct: 3, cases: 20 })
//   const look = pooledLook([{ key, ratios, verdict }, ...], rule)
//   look.change      // the pooled change: estimate and interval (log scale), over the pool
//   look.bands       // per case: its own estimate, its band, whether it strays
//   canStop(look, key, rule)   // true: the pool lets this case stop as `same`
//
// The rule, declared before the run and recorded in config.json (ab.pooled_rule):
// - The pool: every case with at least 2 rounds, those that stray or were
//   decided by their own rule included. Leaving them out biased the pool
//   towards 0: at a true common change of exactly +3%, the cases that
//   happened to read above 3% strayed, and the rest were called `same` in
//   20-23% of runs (simulated). The pooled change weighs each case by its
//   precision (precisionWeighted: its variance shrunk towards the pool's
//   common one first), so that a noisy case cannot set the width of a pool
//   whose other cases are steady; the interval uses Student's t on N - K
//   degrees of freedom. Runs recorded before 2026-12-08 weighed every round
//   alike (weighting: rounds). Its confidence makes the pooled `same` an equivalence test at
//   5% over all the looks (pooledConfidence): at 95%, every case truly ±3%
//   had some case stopped as `same` in 10-14% of 20-case matrices.
// - A case strays when its own mean change is beyond its band
//   B_i = max(noise, t(1 - stray_alpha / (2 cases), n_i - 1) x SE_i): beyond
//   the noise band and significant at stray_alpha / cases. Straying costs only
//   time (the case goes on to its own rule), so stray_alpha is generous.
// - The pool stops a case (at one of its own looks) as `same` when the pooled
//   interval lies inside ±noise, the case has at least min_rounds rounds, does
//   not stray, and its band is at most case_band_max_pct: a change confined to
//   that case bigger than about that band would have made it stray.
// It only ever says `same`, never `slower`: the family-wise promise of the
// per-case rule (an A/A of the matrix calls anything slower at most alpha of
// the time) is untouched; what it costs is power against a change confined to
// few cases, simulated in test/pooled.test.mts and stated in the README.
//
// Pure: tested by seeded simulation (test/pooled.test.mts).
import { normalQuantile, pctOf } from './effect.ts';

export interface PooledRule {
  kind: 'pooled-same';
  /** The matrix is `same` when the pooled interval lies inside ±noise_pct. */
  noise_pct: number;
  /** Confidence of the pooled interval. */
  confidence: number;
  /** Family-wise level of the stray test; each case gets stray_alpha / cases. */
  stray_alpha: number;
  /** The pool stops a case only while the case's own band is at most this (percent). */
  case_band_max_pct: number;
  /** The pool stops a case only after this many of its rounds. */
  min_rounds: number;
  /** Cases in the matrix (the family of the stray test). */
  cases: number;
  /**
   * How the pooled change weighs the cases: `precision` (each case by its rounds over its variance, corrected for
   * that variance being estimated) or `rounds` (every round alike: the rule of runs before 2026-12-08, read so
   * when a recorded rule has no weighting).
   */
  weighting: 'precision' | 'rounds';
}

export const POOLED_DEFAULTS = { confidence: 0.99, stray_alpha: 0.2, case_band_max_pct: 7, min_rounds: 10, weighting: 'precision' as PooledRule['weighting'] };

/**
 * The pooled interval's confidence for a schedule. When every case advances
 * in the same rounds (cgroups: all limits at once) the pool is judged at the
 * rule's few looks, and 99% keeps a false matrix `same` under 5%. When each
 * memory limit runs its rounds before the next (a VM per limit), the pool is
 * judged again at every limit's looks, and it takes 99.5% (simulated, both
 * schedules: test/pooled.test.mts). Weighing every round alike needed 98.5%
 * and 99%; the precision weights, themselves estimated, need the margin.
 */
export function pooledConfidence(limitsInTurn: number): number {
  return limitsInTurn > 1 ? 0.995 : POOLED_DEFAULTS.confidence;
}

export function pooledRule(o: { noisePct: number; cases: number } & Partial<typeof POOLED_DEFAULTS>): PooledRule {
  if (!(Number.isInteger(o.cases) && o.cases >= 1)) throw new Error(`cases must be a positive integer, got ${o.cases}`);
  return {
    kind: 'pooled-same',
    noise_pct: o.noisePct,
    confidence: o.confidence ?? POOLED_DEFAULTS.confidence,
    stray_alpha: o.stray_alpha ?? POOLED_DEFAULTS.stray_alpha,
    case_band_max_pct: o.case_band_max_pct ?? POOLED_DEFAULTS.case_band_max_pct,
    min_rounds: o.min_rounds ?? POOLED_DEFAULTS.min_rounds,
    cases: o.cases,
    weighting: o.weighting ?? POOLED_DEFAULTS.weighting,
  };
}

export interface CaseRounds {
  key: string;
  /** Paired per-round log ratios, candidate / baseline. */
  ratios: readonly number[];
  /** The case's own verdict so far (its per-case rule): a case decided faster/slower is never stopped by the pool. */
  verdict?: 'faster' | 'slower' | 'same' | 'inconclusive' | null;
}

export interface CaseBand {
  key: string;
  n: number;
  /** Mean log ratio and its standard error. */
  mean: number;
  se: number;
  /** The band (log scale) the case's mean must stay inside. */
  band: number;
  strays: boolean;
}

export interface PooledChange {
  /** Log of candidate / baseline, and the interval's bounds. */
  estimate: number;
  lo: number;
  hi: number;
  /** Cases and rounds pooled. */
  cases: number;
  rounds: number;
}

export interface PooledLook {
  /** null when fewer than 2 cases are in the pool. */
  change: PooledChange | null;
  /** The pooled interval lies inside ±noise. */
  inside: boolean;
  bands: CaseBand[];
}

/** Student's t quantile by the Cornish-Fisher expansion around the normal (within 0.3% of exact for df >= 4). */
export function tQuantile(p: number, df: number): number {
  const z = normalQuantileCached(p);
  if (!Number.isFinite(df) || df > 1e6) return z;
  const z3 = z ** 3, z5 = z ** 5, z7 = z ** 7;
  return z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df ** 2) + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df ** 3);
}

const quantiles = new Map<number, number>();
/** normalQuantile bisects 200 times: the few levels a rule uses are computed once. */
function normalQuantileCached(p: number): number {
  let q = quantiles.get(p);
  if (q === undefined) quantiles.set(p, (q = normalQuantile(p)));
  return q;
}

function meanVar(xs: readonly number[]): { mean: number; variance: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.length > 1 ? xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1) : 0;
  return { mean, variance };
}

/**
 * A case's band: max(noise, t x SE); it strays when its mean lies beyond it. null with fewer than 2 rounds.
 * `inflation`: the variance factor of rounds found serially correlated (lib/stats/serial.ts), 1 when independent.
 */
export function caseBand(c: CaseRounds, rule: PooledRule, inflation = 1): CaseBand | null {
  const n = c.ratios.length;
  if (n < 2) return null;
  const { mean, variance } = meanVar(c.ratios);
  const se = Math.sqrt((inflation * variance) / n);
  const noise = Math.log(1 + rule.noise_pct / 100);
  const q = tQuantile(1 - rule.stray_alpha / (2 * rule.cases), n - 1);
  const band = Math.max(noise, q * se);
  // Widening must never make `same` easier: the band it may not exceed (case_band_max_pct) widens, the one it strays
  // beyond does not (widened there it let more cases through: every case ±3%, SD 8%, all limits in each round, 2000
  // seeded matrices with the serial check on: 3.5% false same, 2.2% now).
  const strays = Math.abs(mean) > Math.max(noise, q * Math.sqrt(variance / n));
  return { key: c.key, n, mean, se, band, strays };
}

/** The pooled change over every case with at least 2 rounds, and every case's band (`inflation`: as caseBand's). */
export function pooledLook(cases: readonly CaseRounds[], rule: PooledRule, inflation = 1): PooledLook {
  const bands = cases.map((c) => caseBand(c, rule, inflation)).filter((b): b is CaseBand => b !== null);
  if (bands.length < 2) return { change: null, inside: false, bands };
  const rounds = bands.reduce((a, b) => a + b.n, 0);
  const { estimate, se } = rule.weighting === 'precision' ? precisionWeighted(bands) : roundsWeighted(bands, rounds);
  const half = tQuantile(1 - (1 - rule.confidence) / 2, rounds - bands.length) * se;
  const change = { estimate, lo: estimate - half, hi: estimate + half, cases: bands.length, rounds };
  const noise = rule.noise_pct;
  return { change, inside: pctOf(change.lo) >= -noise && pctOf(change.hi) <= noise, bands };
}

/** Every round alike: the mean of all the pool's ratios. Var(sum of all ratios / N) = sum_i n_i s_i^2 / N^2 = sum_i (n_i SE_i)^2 / N^2. */
function roundsWeighted(bands: readonly CaseBand[], rounds: number): { estimate: number; se: number } {
  const estimate = bands.reduce((a, b) => a + b.mean * b.n, 0) / rounds;
  return { estimate, se: Math.sqrt(bands.reduce((a, b) => a + (b.n * b.se) ** 2, 0)) / rounds };
}

/**
 * Each case by its precision: the common change's best estimate when the cases' spreads differ (the real 4-case
 * matrix paired 9-10% at 100MiB and 3-4% at 500MiB, and every round alike let the noisy cases set the width).
 * Weights taken straight from each case's estimated variance are noisy themselves, and the interval 1 / sqrt(sum
 * of them) then reads too narrow (every case truly ±3%, equal spreads: 5.2% false `same`, against 3.5% with
 * every round alike). So each variance is first shrunk towards the pool's common one, as if the common one were
 * worth SHRINK_DF rounds more, and the interval is the weighted mean's own variance for those weights,
 * sum w_i^2 SE_i^2 / (sum w_i)^2: with equal spreads the weights are near equal and it is the old rule; with
 * spreads three times apart most of the gain stays (simulated in test/pooled.test.mts).
 */
const SHRINK_DF = 8;
function precisionWeighted(bands: readonly CaseBand[]): { estimate: number; se: number } {
  const df = bands.map((b) => b.n - 1);
  const v = bands.map((b) => b.n * b.se ** 2);
  const common = v.reduce((a, x, i) => a + df[i] * x, 0) / df.reduce((a, x) => a + x, 0);
  const w = bands.map((b, i) => b.n / ((df[i] * v[i] + SHRINK_DF * common) / (df[i] + SHRINK_DF)));
  const total = w.reduce((a, x) => a + x, 0);
  if (!(total > 0 && Number.isFinite(total))) return roundsWeighted(bands, bands.reduce((a, b) => a + b.n, 0));
  return {
    estimate: bands.reduce((a, b, i) => a + w[i] * b.mean, 0) / total,
    se: Math.sqrt(bands.reduce((a, b, i) => a + (w[i] * b.se) ** 2, 0)) / total,
  };
}

/** Whether the pool lets case `key` stop as `same` at this look. */
export function canStop(look: PooledLook, key: string, rule: PooledRule): boolean {
  if (!look.inside) return false;
  const b = look.bands.find((x) => x.key === key);
  return !!b && !b.strays && b.n >= rule.min_rounds && pctOf(b.band) <= rule.case_band_max_pct;
}

/** The pooled change as percent figures for reports: estimate and interval. */
export function pooledPct(c: PooledChange): { changePct: number; loPct: number; hiPct: number; cases: number; rounds: number } {
  return { changePct: pctOf(c.estimate), loPct: pctOf(c.lo), hiPct: pctOf(c.hi), cases: c.cases, rounds: c.rounds };
}

/** Which rule stopped a case of an adaptive run (config.json ab.stops): its own, the pool, or the cap; null when none did. */
export function stoppedBy(state: 'decided' | 'cap' | 'pooled' | undefined): 'own rule' | 'pooled' | 'cap' | null {
  return state === 'decided' ? 'own rule' : state === 'pooled' ? 'pooled' : state === 'cap' ? 'cap' : null;
}

export interface PooledSummary {
  changePct: number;
  loPct: number;
  hiPct: number;
  cases: number;
  rounds: number;
  inside: boolean;
  /** The pooled interval's confidence, percent. */
  confidencePct: number;
  weighting: PooledRule['weighting'];
  /** Keys of the cases that stray beyond their band. */
  strays: string[];
}

/**
 * The pooled reading of a finished run: the pooled change over all its cases
 * (each at the rounds it was judged at), and the cases the pool lets be
 * `same` (those whose own verdict is not faster/slower). null with fewer than
 * 2 cases in the pool.
 */
export function pooledVerdicts(cases: readonly CaseRounds[], rule: PooledRule, inflation = 1): { summary: PooledSummary; same: Set<string> } | null {
  const look = pooledLook(cases, rule, inflation);
  if (!look.change) return null;
  const same = new Set(cases.filter((c) => c.verdict !== 'faster' && c.verdict !== 'slower' && canStop(look, c.key, rule)).map((c) => c.key));
  return {
    summary: { ...pooledPct(look.change), inside: look.inside, confidencePct: Number((rule.confidence * 100).toFixed(6)), weighting: rule.weighting, strays: look.bands.filter((b) => b.strays).map((b) => b.key) },
    same,
  };
}
