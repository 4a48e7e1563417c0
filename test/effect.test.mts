// Effect sizes and intervals against brute force: every p-value here is
// recomputed by enumerating all sign flips (signed-rank) or all splits of the
// pooled sample (Mann-Whitney), counting the statistic pair by pair with a
// quadratic mid-rank count (no DP, no shared code), and each interval is the
// hull of the shifts, between consecutive breakpoints, that brute force
// does not reject. Samples include ties within a sample and zero differences.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { holm, oneSampleInterval, pairedChange, pctOf, shiftInterval, signedRank, unpairedChange } from '../lib/stats/effect.ts';
import { seededRandom } from '../lib/stats/interleave.ts';

const ALPHA = 0.05;

function close(actual: number, expected: number, what: string, rel = 1e-9): void {
  if (actual === expected) return;
  const err = Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-300);
  assert.ok(err <= rel, `${what}: got ${actual}, expected ${expected}`);
}

/** Mid-rank of each value by counting (1-based). */
function midRanks(xs: number[]): number[] {
  return xs.map((x) => xs.filter((y) => y < x).length + (xs.filter((y) => y === x).length + 1) / 2);
}

/** Pratt signed-rank p by enumerating every sign pattern of the non-zero values. */
function bruteSignedRank(d: number[]): number {
  const r = midRanks(d.map(Math.abs));
  const nz = d.map((_, i) => i).filter((i) => d[i] !== 0);
  const mean = nz.reduce((s, i) => s + r[i], 0) / 2;
  const t = nz.filter((i) => d[i] > 0).reduce((s, i) => s + r[i], 0);
  let extreme = 0;
  for (let mask = 0; mask < 2 ** nz.length; mask++) {
    const tm = nz.filter((_, k) => (mask >> k) & 1).reduce((s, i) => s + r[i], 0);
    if (Math.abs(tm - mean) >= Math.abs(t - mean) - 1e-9) extreme++;
  }
  return nz.length === 0 ? 1 : extreme / 2 ** nz.length;
}

/** Two-sided Mann-Whitney p by enumerating every split, U by pair counting. */
function bruteMannWhitney(a: number[], b: number[]): number {
  const pooled = [...a, ...b];
  const n1 = a.length;
  const uOf = (xs: number[], ys: number[]) => {
    let u = 0;
    for (const x of xs) for (const y of ys) u += x > y ? 1 : x === y ? 0.5 : 0;
    return u;
  };
  const mu = (n1 * b.length) / 2;
  const obs = Math.abs(uOf(a, b) - mu);
  let extreme = 0;
  let total = 0;
  const pick = (start: number, chosen: number[]) => {
    if (chosen.length === n1) {
      const xs = chosen.map((i) => pooled[i]);
      const ys = pooled.filter((_, i) => !chosen.includes(i));
      total++;
      if (Math.abs(uOf(xs, ys) - mu) >= obs - 1e-9) extreme++;
      return;
    }
    for (let i = start; i < pooled.length; i++) pick(i + 1, [...chosen, i]);
  };
  pick(0, []);
  return extreme / total;
}

function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Hull of the accepted shifts: each gap between distinct breakpoints tested at its midpoint. */
function bruteInterval(breaks: number[], pAt: (t: number) => number): { lo: number; hi: number } {
  const v = [...new Set(breaks)].sort((a, b) => a - b);
  const probes = [v[0] - 1, ...v.slice(1).map((x, i) => (v[i] + x) / 2), v[v.length - 1] + 1];
  const ok = probes.map((t) => pAt(t) >= ALPHA);
  const first = ok.indexOf(true);
  const last = ok.lastIndexOf(true);
  return { lo: first === 0 ? -Infinity : v[first - 1], hi: last === probes.length - 1 ? Infinity : v[last] };
}

function bruteUnpaired(x: number[], y: number[]) {
  const diffs = x.flatMap((xi) => y.map((yj) => yj - xi));
  return {
    estimate: medianOf(diffs),
    p: bruteMannWhitney(x, y),
    ...bruteInterval(diffs, (delta) => bruteMannWhitney(x, y.map((v) => v - delta))),
  };
}

function brutePaired(d: number[]) {
  const walsh = d.flatMap((di, i) => d.slice(i).map((dj) => (di + dj) / 2));
  return {
    estimate: medianOf(walsh),
    p: bruteSignedRank(d),
    ...bruteInterval(walsh, (theta) => bruteSignedRank(d.map((v) => v - theta))),
  };
}

function same(got: { estimate: number; lo: number; hi: number; p: number }, want: typeof got, what: string): void {
  close(got.estimate, want.estimate, `${what} estimate`);
  close(got.p, want.p, `${what} p`);
  assert.equal(got.lo, want.lo, `${what} lower bound`);
  assert.equal(got.hi, want.hi, `${what} upper bound`);
}

describe('effect sizes and intervals', { timeout: 120_000 }, () => {
  test('signed-rank p-values with ties and zero differences, against enumeration of all sign flips', () => {
    const samples = [
      [0.3, -0.1, 0.2, 0.5, 0.4, 0.6],
      [0, 0.1, -0.05, 0.1, 0.2, 0, 0.15, -0.05],
      [0, 0, 0, 0.2, -0.2, 0.2, 0.3],
      [0.1, 0.1, 0.1, 0.1, -0.1, 0.1, 0.2, 0.2, -0.2, 0],
      [0, 0, 0],
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    ];
    for (const d of samples) close(signedRank(d).p, bruteSignedRank(d), `signed-rank p of ${d}`);
    // By hand: 1..6 all positive, T+ = 21 = its maximum; of 64 sign patterns only all-plus and all-minus are as extreme.
    close(signedRank([1, 2, 3, 4, 5, 6]).p, 2 / 64, 'all positive, n = 6');
    assert.equal(signedRank([0, 0]).p, 1);
  });

  test('paired Hodges-Lehmann estimate and interval, against enumeration', () => {
    const samples = [
      [0.3, -0.1, 0.2, 0.5, 0.4, 0.6, 0.25, 0.35],
      [0, 0.1, -0.05, 0.1, 0.2, 0, 0.15, -0.05, 0.3],
      [0.1, 0.1, 0.1, 0.1, -0.1, 0.1, 0.2, 0.2, -0.2, 0],
      [0.02, 0.02, 0.05, -0.01, 0.03, 0.03, 0.04, 0.06, 0],
      [1, 2, 3, 4, 5, 6],
    ];
    for (const d of samples) same(oneSampleInterval(d, ALPHA), brutePaired(d), `paired ${d}`);
    // 6 pairs: the smallest p is 2/64 = 0.031 < 0.05, so the interval is the extreme Walsh averages 1 and 6.
    assert.deepEqual(
      (({ lo, hi }) => ({ lo, hi }))(oneSampleInterval([1, 2, 3, 4, 5, 6])),
      { lo: 1, hi: 6 },
    );
    // 5 pairs cannot reach 0.05 (2/32 = 0.0625): no bound at all.
    const five = oneSampleInterval([1, 2, 3, 4, 5]);
    assert.equal(five.lo, -Infinity);
    assert.equal(five.hi, Infinity);
  });

  test('unpaired Hodges-Lehmann shift and interval, against enumeration', () => {
    const samples: [number[], number[]][] = [
      [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]],
      [[1.0, 1.2, 0.9, 1.1, 1.05], [1.3, 1.25, 1.4, 1.1, 1.35]],
      [[1, 1, 2, 3, 3, 4], [2, 3, 3, 5, 6]],
      [[5, 5, 5, 6, 6], [5, 6, 6, 7, 7, 7]],
      [[10, 10, 10, 10], [10, 10, 11, 11]],
    ];
    for (const [x, y] of samples) same(shiftInterval(x, y, ALPHA), bruteUnpaired(x, y), `unpaired ${x} v ${y}`);
    // Published rule for 5 v 5 without ties: the 3rd and 23rd of the 25 ordered differences (1..9 with multiplicities 1,2,3,4,5,4,3,2,1 here: 2 and 8).
    const r = shiftInterval([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]);
    assert.deepEqual([r.lo, r.estimate, r.hi], [2, 5, 8]);
    // 4 v 4: the full range of the 16 differences.
    const four = shiftInterval([1, 2, 3, 4], [11, 12, 13, 14]);
    assert.deepEqual([four.lo, four.hi], [7, 13]);
  });

  test('random samples with and without ties agree with enumeration', () => {
    const rand = seededRandom(7);
    for (let trial = 0; trial < 12; trial++) {
      const levels = trial % 2 === 0 ? 5 : 1000; // few levels force ties and zeros
      const draw = () => (Math.floor(rand() * levels) - Math.floor(levels / 3)) / levels;
      const d = Array.from({ length: 5 + (trial % 5) }, draw);
      same(oneSampleInterval(d, ALPHA), brutePaired(d), `paired trial ${trial}: ${d}`);
      const x = Array.from({ length: 3 + (trial % 3) }, draw);
      const y = Array.from({ length: 4 + (trial % 2) }, () => draw() + 0.2);
      same(shiftInterval(x, y, ALPHA), bruteUnpaired(x, y), `unpaired trial ${trial}: ${x} v ${y}`);
    }
  });

  test('ratios: the change of candidate against baseline in percent, on the log scale', () => {
    const base = [100, 102, 98, 101, 99, 100];
    const cand = base.map((x) => x * 0.9);
    const u = unpairedChange(base, cand);
    close(pctOf(u.estimate), -10, 'unpaired 10% slower', 1e-9);
    assert.ok(pctOf(u.hi) < 0 && u.p < 0.05);
    const p = pairedChange(base.map((b, i) => Math.log(cand[i] / b)));
    close(pctOf(p.estimate), -10, 'paired 10% slower', 1e-9);
    assert.equal(p.method, 'paired');
    assert.throws(() => unpairedChange([0, 1], [1, 2]), /positive/);
  });

  test('normal approximations above the exact limit stay close to the exact answers', () => {
    const rand = seededRandom(11);
    const d = Array.from({ length: 45 }, () => rand() - 0.42);
    const exact = oneSampleInterval(d, ALPHA, Infinity);
    const approx = oneSampleInterval(d, ALPHA, 40);
    assert.equal(approx.exact, false);
    // (measured: normal 0.0162, exact 0.0152; intervals identical)
    close(approx.p, exact.p, 'signed-rank normal vs exact', 0.1);
    assert.ok(Math.abs(approx.lo - exact.lo) < 0.02 && Math.abs(approx.hi - exact.hi) < 0.02, `${approx.lo}..${approx.hi} vs ${exact.lo}..${exact.hi}`);
    const x = Array.from({ length: 22 }, () => rand());
    const y = Array.from({ length: 22 }, () => rand() + 0.3);
    const ue = shiftInterval(x, y, ALPHA, Infinity);
    const ua = shiftInterval(x, y, ALPHA, 40);
    assert.equal(ua.exact, false);
    assert.ok(Math.abs(ua.lo - ue.lo) < 0.03 && Math.abs(ua.hi - ue.hi) < 0.03, `${ua.lo}..${ua.hi} vs ${ue.lo}..${ue.hi}`);
  });

  test('signed-rank p above 50 pairs: exact, against an exact count in integers', () => {
    // Issue 27, item 9: above 50 pairs the p was the normal approximation's, 1.2-1.9x the exact one at 1e-4 to 1e-3.
    // The oracle counts sign patterns by rank sum in BigInt (no rounding), independently of the library's doubled ranks.
    const exactP = (d: number[]) => {
      const n = d.length;
      const ranks = d.map((v, i) => ({ a: Math.abs(v), i })).sort((x, y) => x.a - y.a).map((x, r) => ({ ...x, r: r + 1 }));
      const max = (n * (n + 1)) / 2;
      let counts = new Array<bigint>(max + 1).fill(0n);
      counts[0] = 1n;
      for (let r = 1; r <= n; r++) {
        const next = counts.slice();
        for (let s = r; s <= max; s++) next[s] += counts[s - r];
        counts = next;
      }
      const tPlus = ranks.filter((x) => d[x.i] > 0).reduce((a, x) => a + x.r, 0);
      const dev = Math.abs(tPlus - max / 2);
      let tail = 0n;
      for (let s = 0; s <= max; s++) if (Math.abs(s - max / 2) >= dev - 1e-9) tail += counts[s];
      return Number((tail * 10n ** 15n) / 2n ** BigInt(n)) / 1e15;
    };
    const rand = seededRandom(27);
    let worstNormal = 1;
    for (const n of [51, 80, 120, 200]) {
      // A shift that puts p near 1e-4..1e-2, where a case's share of alpha lies.
      const d = Array.from({ length: n }, () => rand() - 0.5 + 1.3 / Math.sqrt(n));
      const want = exactP(d);
      const got = signedRank(d);
      assert.equal(got.method, 'exact', `n = ${n}`);
      assert.ok(Math.abs(got.p - want) <= 1e-9 + 1e-9 * want, `n = ${n}: ${got.p} vs ${want}`);
      worstNormal = Math.min(worstNormal, want / signedRank(d, 0).p);
    }
    // The normal approximation differs from it by more than rounding: the test can tell them apart.
    assert.ok(worstNormal < 0.95, `exact / normal ${worstNormal}`);
  });

  test('Holm step-down adjusted p-values', () => {
    // Sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> kept at 0.06 (monotone).
    const adj = holm([0.01, 0.04, 0.03, 0.005]);
    [0.03, 0.06, 0.06, 0.02].forEach((want, i) => close(adj[i], want, `holm ${i}`));
    assert.deepEqual(holm([0.02, 0.9]), [0.04, 0.9]);
    assert.deepEqual(holm([]), []);
    assert.equal(holm([0.6, 0.7])[0], 1);
  });
});
