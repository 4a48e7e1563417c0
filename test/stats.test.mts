// Statistics against independently computed reference values: the exact
// Mann-Whitney p-values come from published tables, from hand enumeration
// (worked in the comments), and from a brute-force enumeration of every
// split of the pooled sample that counts U pair by pair (no ranks, no DP).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cvPct, erfc, geomean, mannWhitney, max, median, min, minPossibleP, spreadPct } from '../lib/stats/stats.ts';

function close(actual: number, expected: number, rel: number, what: string): void {
  const err = Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-300);
  assert.ok(err <= rel, `${what}: got ${actual}, expected ${expected} (relative error ${err.toExponential(2)} > ${rel})`);
}

/** U by pair counting, and the two-sided p by enumerating all C(n1+n2, n1) splits. */
function bruteForce(a: number[], b: number[]): { u: number; p: number } {
  const pooled = [...a, ...b];
  const n1 = a.length;
  const n2 = b.length;
  const uOf = (xs: number[], ys: number[]) => {
    let u = 0;
    for (const x of xs) for (const y of ys) u += x > y ? 1 : x === y ? 0.5 : 0;
    return u;
  };
  const u = uOf(a, b);
  const mu = (n1 * n2) / 2;
  let extreme = 0;
  let total = 0;
  const pick = (start: number, chosen: number[]) => {
    if (chosen.length === n1) {
      const set = new Set(chosen);
      const xs = chosen.map((i) => pooled[i]);
      const ys = pooled.filter((_, i) => !set.has(i));
      total++;
      if (Math.abs(uOf(xs, ys) - mu) >= Math.abs(u - mu)) extreme++;
      return;
    }
    for (let i = start; i < pooled.length; i++) pick(i + 1, [...chosen, i]);
  };
  pick(0, []);
  return { u, p: extreme / total };
}

test('median, min, max, spread, coefficient of variation', { timeout: 300_000 }, () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(min([3, -1, 2]), -1);
  assert.equal(max([3, -1, 2]), 3);
  // median 100, farthest value 90 -> ±10%
  assert.equal(spreadPct([90, 100, 105]), 10);
  assert.equal(spreadPct([7]), 0);
  // mean 5, sample sd of 2,4,4,4,5,5,7,9 is 2.138 -> 42.76%
  close(cvPct([2, 4, 4, 4, 5, 5, 7, 9]), 42.761798705987, 1e-9, 'cv');
  assert.equal(cvPct([5]), 0);
  assert.throws(() => median([]), /empty/);
});

test('geometric mean', { timeout: 300_000 }, () => {
  close(geomean([2, 8]), 4, 1e-12, 'geomean 2,8');
  close(geomean([0.5, 2]), 1, 1e-12, 'geomean 0.5,2');
  close(geomean([1.1, 1.1, 1.1]), 1.1, 1e-12, 'geomean constant');
  assert.throws(() => geomean([1, 0]), /positive/);
  assert.throws(() => geomean([]), /empty/);
});

test('erfc against tabulated values', { timeout: 300_000 }, () => {
  // Abramowitz & Stegun table 7.1 / any CAS: erfc(0)=1, erfc(0.5), erfc(1), erfc(2), erfc(-1) = 2 - erfc(1)
  const table: [number, number][] = [
    [0, 1],
    [0.5, 0.4795001221869535],
    [1, 0.1572992070502851],
    [2, 0.004677734981047266],
    [-1, 1.842700792949715],
  ];
  for (const [x, want] of table) close(erfc(x), want, 2e-7, `erfc(${x})`);
});

test('exact Mann-Whitney p-values, no ties, against published critical values', { timeout: 300_000 }, () => {
  // Fully separated n v n: p = 2 / C(2n, n) (any table of the exact U distribution, e.g. R's
  // wilcox.test(1:n, (n+1):(2n), exact = TRUE)$p.value: 0.1, 0.02857, 0.007937).
  const table: [number[], number[], number][] = [
    [[1, 2, 3], [4, 5, 6], 0.1],
    [[1, 2, 3, 4], [5, 6, 7, 8], 0.02857142857142857],
    [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 0.007936507936507936],
    [[6, 7, 8, 9, 10], [1, 2, 3, 4, 5], 0.007936507936507936],
    // One swap from separation in 4 v 4: U = 1, P(U <= 1) = 2/70, two-sided 4/70.
    [[1, 2, 3, 5], [4, 6, 7, 8], 0.05714285714285714],
    // Interleaved 3 v 3 (1,3,5 v 2,4,6): U = 3, P(U <= 3) = 7/20, two-sided 0.7.
    [[1, 3, 5], [2, 4, 6], 0.7],
  ];
  for (const [a, b, want] of table) {
    const r = mannWhitney(a, b);
    assert.equal(r.method, 'exact');
    close(r.p, want, 1e-12, `p(${a} v ${b})`);
  }
});

test('exact Mann-Whitney with ties', { timeout: 300_000 }, () => {
  // Identical samples: every split is at least as extreme as the observed one.
  assert.equal(mannWhitney([5, 5, 5], [5, 5, 5]).p, 1);
  assert.equal(mannWhitney([1, 2, 3], [1, 2, 3]).p, 1);
  // By hand: pooled 1,2,2,2,3,4 has mid-ranks 1,3,3,3,5,6; a = {1,2,2} has W = 7, U = 1, mu = 4.5.
  // Of the 20 splits, W = 7 ({1,3,3}: 3 ways) and W = 14 ({3,5,6}: 3 ways) are as extreme: 6/20.
  const hand = mannWhitney([1, 2, 2], [2, 3, 4]);
  assert.equal(hand.u, 1);
  close(hand.p, 0.3, 1e-12, 'hand-enumerated tie case');

  const tieCases: [number[], number[]][] = [
    [[1, 2, 2], [2, 3, 4]],
    [[10, 10, 11, 12], [12, 12, 13, 14]],
    [[1, 1, 1, 2, 2], [2, 2, 3, 3, 3]],
    [[100, 101, 101, 101, 99, 100], [101, 102, 102, 103, 101]],
    [[5, 5, 5, 5, 6], [5, 6, 6, 6, 6]],
    [[1.5, 1.5, 2.5], [1.5, 2.5, 2.5, 2.5]],
    [[3, 3, 3, 3, 3, 3, 4], [3, 4, 4, 4, 4, 4, 4]],
  ];
  for (const [a, b] of tieCases) {
    const ref = bruteForce(a, b);
    const got = mannWhitney(a, b);
    assert.equal(got.method, 'exact');
    assert.equal(got.u, ref.u, `U(${a} v ${b})`);
    close(got.p, ref.p, 1e-12, `p(${a} v ${b}) against brute force`);
  }
});

test('exact Mann-Whitney agrees with brute force on random samples with and without ties', { timeout: 300_000 }, () => {
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let trial = 0; trial < 30; trial++) {
    const n1 = 2 + Math.floor(rand() * 5);
    const n2 = 2 + Math.floor(rand() * 5);
    const levels = trial % 2 === 0 ? 4 : 1000; // few levels force ties
    const a = Array.from({ length: n1 }, () => Math.floor(rand() * levels));
    const b = Array.from({ length: n2 }, () => Math.floor(rand() * levels) + (trial % 3));
    close(mannWhitney(a, b).p, bruteForce(a, b).p, 1e-12, `trial ${trial}: ${a} v ${b}`);
  }
});

test('normal approximation for large samples tracks the exact distribution', { timeout: 300_000 }, () => {
  // 25 v 25 with a shift and ties: both methods on the same data; the normal one is
  // what large samples get, and it must stay close to the exact answer.
  const a = Array.from({ length: 25 }, (_, i) => Math.floor(i / 2));
  const b = Array.from({ length: 25 }, (_, i) => Math.floor(i / 2) + 3);
  const approx = mannWhitney(a, b);
  const exact = mannWhitney(a, b, Infinity);
  assert.equal(approx.method, 'normal');
  assert.equal(exact.method, 'exact');
  // (measured: normal 0.01084, exact 0.00983; a 10% gap is the approximation's own error here)
  close(approx.p, exact.p, 0.15, 'normal vs exact, 25 v 25 with ties');
  // 21 v 21 fully separated: U = 0, sigma^2 = 21*21*43/12, z = 220/39.7524 = 5.5343,
  // two-sided p = 2 Q(z) = 3.12540e-8 (Q from the asymptotic tail series, not from erfc).
  const sep = mannWhitney(Array.from({ length: 21 }, (_, i) => i), Array.from({ length: 21 }, (_, i) => i + 21));
  assert.equal(sep.method, 'normal');
  close(sep.p, 3.12540e-8, 1e-4, '21 v 21 separated, normal');
  // All values tied: no variance, no evidence.
  assert.equal(mannWhitney(new Array(30).fill(1), new Array(30).fill(1)).p, 1);
});

test('smallest possible p-value', { timeout: 300_000 }, () => {
  close(minPossibleP(3, 3), 0.1, 1e-12, '3v3');
  close(minPossibleP(4, 4), 0.02857142857142857, 1e-12, '4v4');
  close(minPossibleP(5, 5), 0.007936507936507936, 1e-12, '5v5');
  close(minPossibleP(2, 6), 2 / 28, 1e-12, '2v6');
  assert.equal(minPossibleP(1, 1), 1);
  assert.equal(minPossibleP(0, 5), 1);
});
