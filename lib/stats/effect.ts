// The size of a change with its confidence interval, distribution-free, and
// Holm's adjustment across a family of cases. Values are compared on the log
// scale, so a shift is a ratio (candidate / baseline):
//
//   unpairedChange([100, 104, 98], [90, 93, 88])   // Hodges-Lehmann shift of the logs, exact Mann-Whitney interval
//   pairedChange([0.02, -0.01, 0.05, 0.03, ...])   // per-round log ratios: signed-rank p, Walsh-average estimate
//   pctOf(change.estimate)                          // -> percent change of candidate against baseline
//
// Intervals invert the exact test: the interval holds every shift at which
// the exact two-sided test does not reject (p >= alpha). Ties within a sample
// are handled with the exact permutation distribution of the mid-ranks at
// that shift; the finitely many shifts where a value of one sample ties one
// of the other (pairwise differences, Walsh averages) are left out and the
// set closed, so without ties within a sample this is the textbook interval
// between order statistics (R's wilcox.test(conf.int = TRUE)). The signed-rank
// test ranks zero differences with the others and gives them no sign
// (Pratt's method), its p from the exact permutation distribution of the
// signed mid-ranks. Above an exact size limit, normal approximations.
//
// Pure: no I/O; tested against brute-force enumeration (test/effect.test.mts).
import { doubledMidRanks, EXACT_MAX_N, erfc, mannWhitney, rankSumCounts } from './stats.ts';

/**
 * Above this many pairs the signed-rank test uses the normal approximation.
 * Its exact distribution is one pass per pair over the possible rank sums
 * (n^3 steps: 64 million at 400, about 0.1 s, once per n without ties). At 50
 * the normal p ran 1.2-1.9x the exact one at p of 1e-4 to 1e-3, which is where
 * a case's share of alpha lies.
 */
export const SIGNED_RANK_EXACT_MAX_N = 400;
/** Above this many pairs an interval with equal differences is not scanned gap by gap (a test per Walsh average): the untied order statistics. */
const TIED_SCAN_MAX_N = 50;

export interface Change {
  method: 'unpaired' | 'paired';
  /** Values per side (unpaired) or pairs (paired). */
  n: [number, number] | number;
  /** Hodges-Lehmann estimate of the shift (log of candidate / baseline). */
  estimate: number;
  /** The interval's bounds on the same scale; -Infinity / Infinity when the sample is too small to bound it. */
  lo: number;
  hi: number;
  /** Two-sided p-value of "no shift". */
  p: number;
  /** The interval's nominal confidence (1 - alpha). */
  confidence: number;
  exact: boolean;
}

/** A log shift as a percent change: log(1.1) -> 10. */
export function pctOf(logShift: number): number {
  return (Math.exp(logShift) - 1) * 100;
}

/** Standard normal quantile, by bisection on erfc (accurate to erfc's 1.2e-7 relative error). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`normal quantile of ${p}`);
  let lo = -40;
  let hi = 40;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (0.5 * erfc(-mid / Math.SQRT2) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

const logsOf = (xs: readonly number[], side: string) =>
  xs.map((x) => {
    if (!(x > 0)) throw new Error(`a ratio needs positive values, the ${side} has ${x}`);
    return Math.log(x);
  });

/** Two independent samples (two separate runs): the change of `b` against `a`, on the log scale. */
export function unpairedChange(a: readonly number[], b: readonly number[], alpha = 0.05, exactMaxN = EXACT_MAX_N): Change {
  const s = shiftInterval(logsOf(a, 'baseline'), logsOf(b, 'candidate'), alpha, exactMaxN);
  return { method: 'unpaired', n: [a.length, b.length], ...s, confidence: 1 - alpha };
}

/** Paired rounds: the per-round log ratios log(candidate_i / baseline_i). */
export function pairedChange(logRatios: readonly number[], alpha = 0.05, exactMaxN = SIGNED_RANK_EXACT_MAX_N): Change {
  const s = oneSampleInterval(logRatios, alpha, exactMaxN);
  return { method: 'paired', n: logRatios.length, ...s, confidence: 1 - alpha };
}

// ---- two samples: Hodges-Lehmann shift, Mann-Whitney interval ----

interface Shift {
  estimate: number;
  lo: number;
  hi: number;
  p: number;
  exact: boolean;
}

/** The shift of y against x: median of the pairwise differences y_j - x_i, with the inverted Mann-Whitney interval. */
export function shiftInterval(x: readonly number[], y: readonly number[], alpha = 0.05, exactMaxN = EXACT_MAX_N): Shift {
  const n1 = x.length;
  const n2 = y.length;
  if (n1 === 0 || n2 === 0) throw new Error('a shift needs at least one value on each side');
  const diffs = new Float64Array(n1 * n2);
  let k = 0;
  for (const xi of x) for (const yj of y) diffs[k++] = yj - xi;
  const estimate = medianOf(diffs);
  const N = diffs.length;
  const exact = n1 + n2 <= exactMaxN;
  const ties = hasTies(x) || hasTies(y);
  if (exact && ties) return { estimate, ...scanShift(x, y, diffs.sort(), alpha), p: mannWhitney(x, y).p, exact };
  // No ties within a sample: at every shift off the pairwise differences the
  // pooled ranks are 1..n, so one distribution serves and the count of
  // differences below the shift, c, is U. Accepted: |c - N/2| <= dev.
  const dev = exact ? exactUAcceptance(n1, n2, alpha) : normalAcceptance(Math.sqrt((n1 * n2 * (n1 + n2 + 1)) / 12), alpha);
  // Without ties in the pooled sample the exact p comes from the same cached distribution (U = pairs with y_j < x_i).
  const below = diffs.reduce((c, v) => (v < 0 ? c + 1 : c), 0);
  const p = exact && !diffs.includes(0) ? mwTail(n1, n2).get(Math.abs(2 * below - N))! : mannWhitney(x, y, exactMaxN).p;
  return { estimate, ...orderStatInterval(diffs, N, dev), p, exact };
}

/** The largest |U - n1 n2 / 2| that the exact test (no ties) does not reject at alpha. */
function exactUAcceptance(n1: number, n2: number, alpha: number): number {
  return acceptance(mwTail(n1, n2), alpha) / 2;
}

/** Two-sided p of each doubled deviation |2U - n1 n2| without ties. */
function mwTail(n1: number, n2: number): Map<number, number> {
  const ranks2 = Array.from({ length: n1 + n2 }, (_, i) => 2 * (i + 1));
  // Doubled U = s - n1 (n1 + 1); doubled deviation from the mean = |that - n1 n2|.
  return tailTable(`mw:${n1}:${n2}`, () => rankSumCounts(n1, ranks2), (s) => Math.abs(s - n1 * (n1 + 1) - n1 * n2));
}

/** Largest deviation whose two-sided p is >= alpha (-1 when none): the acceptance region is |deviation| <= it. */
function acceptance(tail: Map<number, number>, alpha: number): number {
  const known = accepted.get(tail)?.get(alpha);
  if (known !== undefined) return known;
  let best = -1;
  for (const [d, p] of tail) if (p >= alpha && d > best) best = d;
  if (!accepted.has(tail)) accepted.set(tail, new Map());
  accepted.get(tail)!.set(alpha, best);
  return best;
}
const accepted = new WeakMap<Map<number, number>, Map<number, number>>();

/** Continuity-corrected normal acceptance: |c - mean| <= z sigma + 1/2. */
function normalAcceptance(sigma: number, alpha: number): number {
  return normalQuantile(1 - alpha / 2) * sigma + 0.5;
}

/**
 * The interval from the differences when the statistic at a shift is the
 * count of differences below it and counts c with |c - N/2| <= dev are
 * accepted: [D_(L), D_(N-L+1)] (order statistics) with L the smallest accepted count.
 */
function orderStatInterval(values: Float64Array, N: number, dev: number): { lo: number; hi: number } {
  const L = Math.ceil(N / 2 - dev - 1e-9);
  if (L < 1) return { lo: -Infinity, hi: Infinity };
  return { lo: select(values, L - 1), hi: select(values, N - L) };
}

/**
 * With ties within a sample the rank pattern, so the null distribution,
 * changes with the shift: test the midpoint of every gap between distinct
 * differences (and beyond both ends) and keep the outermost accepted gaps.
 */
function scanShift(x: readonly number[], y: readonly number[], sorted: Float64Array, alpha: number): { lo: number; hi: number } {
  const n1 = x.length;
  const n2 = y.length;
  const pAt = (delta: number) => {
    const ranks2 = doubledMidRanks([...x, ...y.map((v) => v - delta)]);
    const u2 = ranks2.slice(0, n1).reduce((s, r) => s + r, 0) - n1 * (n1 + 1);
    const key = [...ranks2].sort((a, b) => a - b).join(',');
    const tail = tailTable(`mw:${n1}:${key}`, () => rankSumCounts(n1, ranks2), (s) => Math.abs(s - n1 * (n1 + 1) - n1 * n2));
    return tail.get(Math.abs(u2 - n1 * n2))!;
  };
  return scanCells(distinct(sorted), pAt, alpha);
}

// ---- one sample (paired): signed-rank test, Walsh averages ----

export interface SignedRank {
  /** Sum of the mid-ranks of |d| (zeros ranked too) over the positive d. */
  tPlus: number;
  p: number;
  method: 'exact' | 'normal';
}

/**
 * Two-sided Wilcoxon signed-rank test of "centred on zero", Pratt's method:
 * zeros are ranked among |d| but carry no sign, tied |d| share mid-ranks, and
 * p comes from the exact distribution of the signed mid-ranks under random
 * signs of the non-zero d (exact up to `exactMaxN` values, as coin's exact
 * wilcoxsign_test(zero.method = "Pratt")); above it, the normal approximation
 * with the variance of those ranks and a continuity correction of 1/2.
 */
export function signedRank(d: readonly number[], exactMaxN = SIGNED_RANK_EXACT_MAX_N): SignedRank {
  if (d.length === 0) throw new Error('signed-rank test of an empty sample');
  const ranks2 = doubledMidRanks(d.map(Math.abs));
  const signed = ranks2.filter((_, i) => d[i] !== 0);
  const t2 = ranks2.reduce((s, r, i) => (d[i] > 0 ? s + r : s), 0);
  const sum2 = signed.reduce((s, r) => s + r, 0);
  // Doubled statistic against its mean: |2 T2 - sum2| (the mean of T2 is sum2 / 2).
  const dev = Math.abs(2 * t2 - sum2);
  const tPlus = t2 / 2;
  if (signed.length === 0) return { tPlus, p: 1, method: 'exact' };
  if (d.length > exactMaxN) {
    const sd = Math.sqrt(signed.reduce((s, r) => s + (r / 2) ** 2, 0) / 4);
    const z = Math.max(0, dev / 4 - 0.5) / sd;
    return { tPlus, p: Math.min(1, erfc(z / Math.SQRT2)), method: 'normal' };
  }
  // Without ties or zeros the ranks are 1..n, whatever the data: one distribution per n.
  const key = signed.length === d.length && !hasTies(ranks2) ? `sr:${d.length}` : `srt:${[...signed].sort((a, b) => a - b).join(',')}`;
  const tail = tailTable(key, () => signedCounts(signed), (s) => Math.abs(2 * s - sum2));
  return { tPlus, p: tail.get(dev)!, method: 'exact' };
}

/** counts[s]: how many sign patterns give doubled positive-rank sum s. */
function signedCounts(ranks2: readonly number[]): Float64Array {
  const max = ranks2.reduce((s, r) => s + r, 0);
  const c = new Float64Array(max + 1);
  c[0] = 1;
  for (const r of ranks2) for (let s = max; s >= r; s--) c[s] += c[s - r];
  return c;
}

/** The largest |T+ - n(n+1)/4| the exact signed-rank test (no ties, no zeros) does not reject at alpha. */
function signedRankAcceptance(n: number, alpha: number): number {
  const ranks2 = Array.from({ length: n }, (_, i) => 2 * (i + 1));
  return acceptance(tailTable(`sr:${n}`, () => signedCounts(ranks2), (s) => Math.abs(2 * s - n * (n + 1))), alpha) / 4;
}

/** Median of the Walsh averages (d_i + d_j) / 2, i <= j, with the inverted signed-rank interval. */
export function oneSampleInterval(d: readonly number[], alpha = 0.05, exactMaxN = SIGNED_RANK_EXACT_MAX_N): Shift {
  const n = d.length;
  if (n === 0) throw new Error('a one-sample estimate needs at least one value');
  const M = (n * (n + 1)) / 2;
  const walsh = new Float64Array(M);
  let k = 0;
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) walsh[k++] = (d[i] + d[j]) / 2;
  const estimate = medianOf(walsh);
  const exact = n <= exactMaxN;
  const p = signedRank(d, exactMaxN).p;
  if (exact && n <= TIED_SCAN_MAX_N && hasTies(d)) {
    // At a shift off the Walsh averages no d - theta is zero and only equal d tie.
    const pAt = (theta: number) => signedRank(d.map((v) => v - theta), exactMaxN).p;
    return { estimate, ...scanCells(distinct(walsh.sort()), pAt, alpha), p, exact };
  }
  // No equal d: off the Walsh averages the ranks are 1..n and T+ is the count of averages above the shift.
  // (Equal d above TIED_SCAN_MAX_N: the same order statistics, as if untied.)
  let dev: number;
  if (exact) {
    dev = signedRankAcceptance(n, alpha);
  } else {
    dev = normalAcceptance(Math.sqrt((n * (n + 1) * (2 * n + 1)) / 24), alpha);
  }
  return { estimate, ...orderStatInterval(walsh, M, dev), p, exact };
}

/**
 * Whether oneSampleInterval(d, alpha) lies inside [lo, hi], cheaply: without
 * equal d the interval is [W_(L), W_(M-L+1)] of the Walsh averages, so it
 * suffices that fewer than L of them fall below lo and fewer than L above
 * hi (a count, no ordering). With equal d, or above the exact limit, it
 * computes the interval. For the sequential rule, which asks at every look.
 */
export function pairedIntervalInside(d: readonly number[], lo: number, hi: number, alpha = 0.05, exactMaxN = SIGNED_RANK_EXACT_MAX_N): boolean {
  const n = d.length;
  if (n > exactMaxN || hasTies(d)) {
    const c = oneSampleInterval(d, alpha, exactMaxN);
    return c.lo >= lo && c.hi <= hi;
  }
  const M = (n * (n + 1)) / 2;
  const dev = signedRankAcceptance(n, alpha);
  const L = Math.ceil(M / 2 - dev - 1e-9);
  if (L < 1) return false;
  let below = 0;
  let above = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const w = (d[i] + d[j]) / 2;
      if (w < lo) below++;
      else if (w > hi) above++;
    }
  }
  return below < L && above < L;
}

// ---- shared ----

/**
 * The two-sided p of every deviation the statistic can take: P(dev(S) >= d)
 * for S distributed as counts, keyed by d (the deviations are integers).
 */
function tailTable(key: string, counts: () => Float64Array, dev: (s: number) => number): Map<number, number> {
  let t = tables.get(key);
  if (t) return t;
  const c = counts();
  const byDev = new Map<number, number>();
  let total = 0;
  for (let s = 0; s < c.length; s++) {
    if (c[s] === 0) continue;
    total += c[s];
    byDev.set(dev(s), (byDev.get(dev(s)) ?? 0) + c[s]);
  }
  t = new Map();
  let tail = 0;
  for (const d of [...byDev.keys()].sort((a, b) => b - a)) {
    tail += byDev.get(d)!;
    t.set(d, Math.min(1, tail / total));
  }
  if (tables.size > 2000) tables.clear();
  tables.set(key, t);
  return t;
}

/**
 * The hull of the accepted gaps: gaps are (-inf, v0), (v0, v1), ...,
 * (v_last, inf) between the distinct breakpoints v; each is tested at its
 * midpoint (one beyond each end), scanning inwards from both ends.
 */
function scanCells(v: number[], pAt: (t: number) => number, alpha: number): { lo: number; hi: number } {
  const cells = v.length + 1;
  const probe = (c: number) => (c === 0 ? v[0] - 1 : c === v.length ? v[v.length - 1] + 1 : (v[c - 1] + v[c]) / 2);
  let first = 0;
  while (first < cells && pAt(probe(first)) < alpha) first++;
  if (first === cells) {
    // No gap accepted: constant samples, whose only accepted shift is their one breakpoint (p = 1 there).
    const mid = v[v.length >> 1];
    return { lo: mid, hi: mid };
  }
  let last = cells - 1;
  while (last > first && pAt(probe(last)) < alpha) last--;
  return { lo: first === 0 ? -Infinity : v[first - 1], hi: last === v.length ? Infinity : v[last] };
}

function medianOf(xs: Float64Array): number {
  const mid = xs.length >> 1;
  return xs.length % 2 === 1 ? select(xs, mid) : (select(xs, mid - 1) + select(xs, mid)) / 2;
}

/**
 * The k-th smallest (0-based) by Hoare's quickselect, reordering xs in place
 * (its values stay the same, so selections can follow one another): the
 * sequential rule asks for three order statistics of about a thousand Walsh
 * averages at every look, which a full sort makes several times slower.
 */
function select(xs: Float64Array, k: number): number {
  let lo = 0;
  let hi = xs.length - 1;
  while (hi > lo) {
    const pivot = xs[(lo + hi) >> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (xs[i] < pivot) i++;
      while (xs[j] > pivot) j--;
      if (i <= j) {
        const t = xs[i];
        xs[i] = xs[j];
        xs[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return xs[k];
  }
  return xs[k];
}

function distinct(sorted: Float64Array): number[] {
  const out: number[] = [];
  for (const x of sorted) if (out.length === 0 || x !== out[out.length - 1]) out.push(x);
  return out;
}

function hasTies(xs: readonly number[]): boolean {
  return new Set(xs).size < xs.length;
}

// Null distributions depend only on the sample sizes and the tie pattern; the
// sequential rule and the intervals ask for the same ones again and again.
const tables = new Map<string, Map<number, number>>();

// ---- family-wise control ----

/**
 * Holm's step-down adjusted p-values, in input order: sorted ascending,
 * p_(i) becomes max over j <= i of min(1, (m - j + 1) p_(j)). Rejecting
 * where the adjusted p < alpha keeps the chance of any false rejection in
 * the family at most alpha, whatever the dependence between the tests.
 */
export function holm(ps: readonly number[]): number[] {
  const m = ps.length;
  const order = ps.map((_, i) => i).sort((i, j) => ps[i] - ps[j]);
  const out = new Array<number>(m);
  let running = 0;
  order.forEach((idx, rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * ps[idx]));
    out[idx] = running;
  });
  return out;
}
