// Pure statistics for comparing two runs: medians and spread of one sample,
// the two-sided Mann-Whitney U test between two samples, geometric mean.
//
//   mannWhitney([1, 2, 3], [4, 5, 6])  // { u: 0, p: 0.1, method: 'exact' }
//
// No I/O: tested on literal data against independently computed values.

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('median of an empty sample');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function min(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('min of an empty sample');
  return xs.reduce((a, b) => (b < a ? b : a));
}

export function max(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('max of an empty sample');
  return xs.reduce((a, b) => (b > a ? b : a));
}

/**
 * Spread around the median in percent: the farther of min and max from the
 * median, relative to it (printed as "±x%"). 0 for one value or a zero median.
 */
export function spreadPct(xs: readonly number[]): number {
  const m = median(xs);
  if (m === 0) return 0;
  return (Math.max(max(xs) - m, m - min(xs)) / Math.abs(m)) * 100;
}

/** Coefficient of variation in percent: sample standard deviation / mean. 0 for fewer than 2 values. */
export function cvPct(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (mean === 0) return 0;
  const ss = xs.reduce((a, x) => a + (x - mean) ** 2, 0);
  return (Math.sqrt(ss / (xs.length - 1)) / Math.abs(mean)) * 100;
}

/** Geometric mean of positive numbers (throughput ratios). */
export function geomean(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('geometric mean of an empty sample');
  if (xs.some((x) => !(x > 0))) throw new Error('geometric mean needs positive numbers');
  return Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
}

/** Above this many values in total the exact distribution gives way to the normal approximation. */
export const EXACT_MAX_N = 40;

export interface MannWhitney {
  /** U of the first sample: pairs (a, b) with a > b, ties counted as 1/2. */
  u: number;
  /** Two-sided p-value: P(|U - n1 n2 / 2| >= |u - n1 n2 / 2|) under the null. */
  p: number;
  method: 'exact' | 'normal';
}

/**
 * Two-sided Mann-Whitney U test. Exact when n1 + n2 <= exactMaxN: the
 * permutation distribution of the rank sum, computed from the mid-ranks of
 * the pooled sample (so ties are handled exactly, as coin's exact
 * wilcox_test does). Above that, the normal approximation with the tie
 * correction of the variance and a continuity correction of 1/2.
 */
export function mannWhitney(a: readonly number[], b: readonly number[], exactMaxN = EXACT_MAX_N): MannWhitney {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) throw new Error('Mann-Whitney needs at least one value on each side');
  const ranks2 = doubledMidRanks([...a, ...b]);
  // Doubled mid-ranks are integers, so the distribution below is exact integer arithmetic.
  const w2 = ranks2.slice(0, n1).reduce((s, r) => s + r, 0);
  const u2 = w2 - n1 * (n1 + 1); // 2U
  const dev2 = Math.abs(u2 - n1 * n2); // 2|U - mu|
  const u = u2 / 2;
  if (n1 + n2 > exactMaxN) return { u, p: normalP(dev2 / 2, n1, n2, ranks2), method: 'normal' };
  return { u, p: exactP(dev2, n1, n2, ranks2), method: 'exact' };
}

/** 2 x the mid-rank of each value (1-based), in input order. */
export function doubledMidRanks(xs: readonly number[]): number[] {
  const order = xs.map((_, i) => i).sort((i, j) => xs[i] - xs[j]);
  const out = new Array<number>(xs.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && xs[order[j + 1]] === xs[order[i]]) j++;
    // Positions i..j (0-based) share the mid-rank ((i+1) + (j+1)) / 2.
    for (let k = i; k <= j; k++) out[order[k]] = i + j + 2;
    i = j + 1;
  }
  return out;
}

/**
 * counts[s]: how many n1-subsets of the pooled values have doubled rank sum s,
 * for the doubled mid-ranks `ranks2` (integers, so the counting is exact).
 */
export function rankSumCounts(n1: number, ranks2: readonly number[]): Float64Array {
  const maxSum = ranks2.reduce((s, r) => s + r, 0);
  const counts = Array.from({ length: n1 + 1 }, () => new Float64Array(maxSum + 1));
  counts[0][0] = 1;
  for (const r of ranks2) {
    for (let k = n1; k >= 1; k--) {
      const from = counts[k - 1];
      const to = counts[k];
      for (let s = maxSum; s >= r; s--) if (from[s - r] !== 0) to[s] += from[s - r];
    }
  }
  return counts[n1];
}

function exactP(dev2: number, n1: number, n2: number, ranks2: readonly number[]): number {
  const last = rankSumCounts(n1, ranks2);
  let total = 0;
  let extreme = 0;
  for (let s = 0; s < last.length; s++) {
    if (last[s] === 0) continue;
    total += last[s];
    if (Math.abs(s - n1 * (n1 + 1) - n1 * n2) >= dev2) extreme += last[s];
  }
  return Math.min(1, extreme / total);
}

function normalP(dev: number, n1: number, n2: number, ranks2: readonly number[]): number {
  const n = n1 + n2;
  const tieSizes = new Map<number, number>();
  for (const r of ranks2) tieSizes.set(r, (tieSizes.get(r) ?? 0) + 1);
  let tieSum = 0;
  for (const t of tieSizes.values()) tieSum += t ** 3 - t;
  const variance = ((n1 * n2) / 12) * (n + 1 - tieSum / (n * (n - 1)));
  if (variance <= 0) return 1;
  const z = Math.max(0, dev - 0.5) / Math.sqrt(variance);
  return Math.min(1, erfc(z / Math.SQRT2));
}

/** Complementary error function (Numerical Recipes' erfcc, relative error < 1.2e-7). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
        t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/**
 * The smallest two-sided p-value Mann-Whitney can give for n1 v n2 values
 * (complete separation, no ties): 2 / C(n1 + n2, n1). When it is >= alpha,
 * no comparison can ever be significant.
 */
export function minPossibleP(n1: number, n2: number): number {
  if (n1 === 0 || n2 === 0) return 1;
  let c = 1;
  for (let i = 1; i <= n1; i++) c = (c * (n2 + i)) / i;
  return Math.min(1, 2 / c);
}
