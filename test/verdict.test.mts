// The verdict rule on literal intervals, the group-sequential stopping rule's
// parameters, and a seeded simulation of the whole decision: log-normal
// throughput at a CV of 10% with slow drift, a 20-case matrix, adaptive
// interleaved rounds (paired) and separate runs (unpaired, Holm across the
// matrix). The figures it prints are the ones quoted in the README.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { holm, pctOf, unpairedChange } from '../lib/stats/effect.ts';
import { normalFrom, seededRandom } from '../lib/stats/interleave.ts';
import { decideAtLook, lastLookReached, lookLevels, nextLook, stoppingRule, DEFAULT_MAX_ROUNDS } from '../lib/stats/sequential.ts';
import { changeVerdict, detectable } from '../lib/stats/verdict.ts';

const L = (pct: number) => Math.log(1 + pct / 100);
const RULE = { alpha: 0.05, noisePct: 3 };
const CASES = 20;
const SIGMA = Math.sqrt(Math.log(1 + 0.1 ** 2)); // log-normal at CV 10%

describe('verdicts', { timeout: 300_000 }, () => {
  test('the rule on literal intervals', () => {
    const iv = (e: number, lo: number, hi: number) => ({ estimate: L(e), lo: L(lo), hi: L(hi) });
    const table: [ReturnType<typeof iv>, number, 'higher' | 'lower', string][] = [
      [iv(-10, -15, -5), 0.001, 'higher', 'worse'], // throughput down 10%, interval below 0
      [iv(-10, -15, -5), 0.001, 'lower', 'better'], // the same change in duration
      [iv(8, 4, 12), 0.01, 'higher', 'better'],
      [iv(-10, -15, -5), 0.05, 'higher', 'inconclusive'], // adjusted p must be below alpha
      [iv(-2.5, -2.9, -2.1), 0.001, 'higher', 'same'], // significant but inside the noise band
      [iv(-2.5, -4, -1), 0.001, 'higher', 'inconclusive'], // significant, below the band, interval leaves it
      [iv(-3, -5, -1), 0.001, 'higher', 'worse'], // exactly at the band counts
      [iv(-4, -9, 0.8), 0.001, 'higher', 'inconclusive'], // interval touches 0
      [iv(0.5, -2, 2.9), 0.8, 'higher', 'same'],
      [iv(0, -Infinity, Infinity), 1, 'higher', 'inconclusive'],
    ];
    for (const [c, p, better, want] of table) {
      assert.equal(changeVerdict(c, p, RULE, better), want, `${pctOf(c.estimate).toFixed(1)}% [${pctOf(c.lo).toFixed(1)}, ${pctOf(c.hi).toFixed(1)}] p=${p}`);
    }
  });

  test('smallest detectable change and the iterations for the noise band', () => {
    // sd 0.1 of logs, 10 pairs, level 0.0025: (z 3.023 + 0.842) x 0.1 / sqrt(10) = 0.1222 -> 13.0%.
    const d = detectable(0.1, 10, true, 0.0025, 3, 10)!;
    assert.ok(Math.abs(d.pct - 13.0) < 0.1, String(d.pct));
    // To bring 0.1222 down to log(1.03) = 0.02956: 10 x (0.1222 / 0.02956)^2 = 171 pairs.
    assert.ok(Math.abs(d.iterations - 171) <= 1, String(d.iterations));
    assert.deepEqual(detectable(0, 10, true, 0.05, 3, 5), { pct: 0, iterations: 5 });
    assert.equal(detectable(0.1, 1, false, 0.05, 3, 5), null);
  });

  test('the stopping rule: looks capped by the maximum, alpha spent across looks sums to alpha / cases', () => {
    const rule = stoppingRule({ ...RULE, cases: CASES });
    assert.deepEqual(rule.looks, [6, 10, 16, 24, 36, 48]);
    assert.equal(DEFAULT_MAX_ROUNDS, 48);
    const levels = lookLevels(rule);
    assert.ok(Math.abs(levels.reduce((a, b) => a + b) - 0.05 / CASES) < 1e-15);
    assert.ok(levels.every((l, i) => i === 0 || l > levels[i - 1]), 'later looks get more');
    const short = stoppingRule({ ...RULE, cases: 4, maxRounds: 20 });
    assert.deepEqual(short.looks, [6, 10, 16, 20]);
    assert.deepEqual([nextLook(0, short), nextLook(6, short), nextLook(17, short), nextLook(20, short)], [6, 10, 20, null]);
    assert.deepEqual([lastLookReached(5, short), lastLookReached(12, short), lastLookReached(30, short)], [null, 10, 20]);
    assert.throws(() => decideAtLook([0.1, 0.2], 6, short), /only 2 measured/);
    assert.throws(() => decideAtLook(new Array(8).fill(0.1), 8, short), /not one of the rule's looks/);
    // 16 rounds all 30% slower: the exact p is 2 / 2^16, below look 16's level; decided at once.
    const slow = Array.from({ length: 16 }, (_, i) => L(-30) + i * 1e-4);
    const d = decideAtLook(slow, 16, short);
    assert.equal(d.state, 'decided');
    assert.equal(d.verdict, 'slower');
    assert.ok(pctOf(d.change!.hi) < -29);
  });

  test('`same` over all the looks is an equivalence test at 5%: a true change of exactly ±3% is called same at most 5% of the time', (t) => {
    // Issue 27, item 7: with a 95% interval at each of the 6 looks a true -3% was `same` 6.7% of the time at paired SD 4%.
    const rand = seededRandom(20261207);
    const normal = normalFrom(rand);
    const N = 2000;
    const rate = (rule: ReturnType<typeof stoppingRule>, sdPct: number, effectPct: number) => {
      let same = 0;
      for (let k = 0; k < N; k++) {
        const d = Array.from({ length: 48 }, () => L(effectPct) + normal() * L(sdPct));
        for (const look of rule.looks) {
          const r = decideAtLook(d, look, rule);
          if (r.state === 'continue') continue;
          if (r.verdict === 'same') same++;
          break;
        }
      }
      return same / N;
    };
    const rule = stoppingRule({ alpha: 0.05, noisePct: 3, cases: 4 });
    assert.equal(rule.same_confidence, 0.975);
    const unadjusted = { ...rule, same_confidence: rule.confidence };
    for (const sdPct of [2, 4, 8]) {
      for (const effectPct of [-3, 3]) {
        const [now, before] = [rate(rule, sdPct, effectPct), rate(unadjusted, sdPct, effectPct)];
        t.diagnostic(`paired SD ${sdPct}%, true change ${effectPct}%: same ${(now * 100).toFixed(1)}% of ${N} (with a 95% interval at each look: ${(before * 100).toFixed(1)}%)`);
        assert.ok(now <= 0.05, `SD ${sdPct}%, ${effectPct}%: ${now}`);
        if (sdPct <= 4) assert.ok(before > 0.05, `the test can fail: unadjusted ${before}`);
      }
    }
  });

  test('simulation: adaptive paired rounds and separate runs at CV 10% with slow drift', (t) => {
    const rand = seededRandom(20261124);
    const normal = normalFrom(rand);
    const rule = stoppingRule({ ...RULE, cases: CASES });

    /** One case run adaptively: rounds of (baseline, candidate) under a drift both sides of a round share. */
    const adaptiveCase = (slowdown: number) => {
      const phase = rand() * 2 * Math.PI;
      const ratios: number[] = [];
      let look = nextLook(0, rule);
      while (look !== null) {
        while (ratios.length < look) {
          // Slow drift: +-10% over a period of 30 rounds, the same for both uploads of a round.
          const drift = 0.1 * Math.sin(phase + (2 * Math.PI * ratios.length) / 30);
          const base = 100 * Math.exp(drift + SIGMA * normal());
          const cand = 100 * (1 - slowdown) * Math.exp(drift + SIGMA * normal());
          ratios.push(Math.log(cand / base));
        }
        const d = decideAtLook(ratios, look, rule);
        if (d.state !== 'continue') return { verdict: d.verdict, rounds: look };
        look = nextLook(look, rule);
      }
      throw new Error('unreachable: the last look always stops');
    };

    const MATRICES = 2000;
    let anySlower = 0;
    let aaRounds = 0;
    for (let m = 0; m < MATRICES; m++) {
      let slower = false;
      for (let c = 0; c < CASES; c++) {
        const r = adaptiveCase(0);
        aaRounds += r.rounds;
        slower ||= r.verdict === 'slower';
      }
      if (slower) anySlower++;
    }
    const power = (slowdown: number, n: number) => {
      let slower = 0;
      let rounds = 0;
      for (let i = 0; i < n; i++) {
        const r = adaptiveCase(slowdown);
        if (r.verdict === 'slower') slower++;
        rounds += r.rounds;
      }
      return { rate: slower / n, meanRounds: rounds / n };
    };
    const p10 = power(0.1, 2000);
    const p5 = power(0.05, 500);

    // Separate runs, 10 measured iterations a side; drift between the runs moves every case of the
    // candidate run by a common offset (sd 1%, and 3% to show what interleaving is for); Holm across the 20 cases.
    const unpairedMatrix = (slowdown: number, driftSd: number) => {
      const offset = driftSd * normal();
      const side = (factor: number, shift: number) => Array.from({ length: 10 }, () => 100 * factor * Math.exp(shift + SIGMA * normal()));
      const changes = Array.from({ length: CASES }, () => unpairedChange(side(1, 0), side(1 - slowdown, offset)));
      const adj = holm(changes.map((c) => c.p));
      return changes.map((c, i) => changeVerdict(c, adj[i], RULE, 'higher'));
    };
    const UNPAIRED = 300;
    const aaRate = (driftSd: number) => {
      let n = 0;
      for (let m = 0; m < UNPAIRED; m++) if (unpairedMatrix(0, driftSd).includes('worse')) n++;
      return n / UNPAIRED;
    };
    const [unpairedAA1, unpairedAA3] = [aaRate(0.01), aaRate(0.03)];
    let unpaired10 = 0;
    for (let m = 0; m < 50; m++) unpaired10 += unpairedMatrix(0.1, 0.01).filter((v) => v === 'worse').length;

    const figures = {
      aaMatricesWithAnySlower: anySlower / MATRICES,
      aaMeanRounds: aaRounds / (MATRICES * CASES),
      slowdown10: p10,
      slowdown5: p5,
      unpaired10v10: { aaMatricesWithAnySlowerDrift1: unpairedAA1, aaMatricesWithAnySlowerDrift3: unpairedAA3, slowdown10CasesSlower: unpaired10 / (50 * CASES) },
    };
    t.diagnostic(JSON.stringify(figures));
    assert.ok(figures.aaMatricesWithAnySlower <= 0.05, `A/A: ${anySlower} of ${MATRICES} matrices had a slower case`);
    assert.ok(p10.rate >= 0.9, `10% slowdown decided slower in ${(p10.rate * 100).toFixed(1)}% of cases`);
    assert.ok(unpairedAA1 <= 0.05, `unpaired A/A, drift sd 1% between runs: ${unpairedAA1 * UNPAIRED} of ${UNPAIRED}`);
  });
});
