// When to stop adding interleaved rounds to a comparison: a group-sequential
// rule, declared before the run and recorded in config.json, so that looking
// at the data repeatedly does not inflate false alarms.
//
//   const rule = stoppingRule({ alpha: 0.05, noisePct: 3, family: family(matrix, 2), maxRounds: 48 })
//   const s = new SequentialComparison(rule)
//   s.round(logRatio, false)   // one round of (baseline, candidate): a LookDecision when a look was taken, else null
//   s.round(null, false)       // a round in which a side failed: counts toward no look
//   s.decision                 // once it stopped: decided (faster, slower, same), or at the cap / the end of the planned rounds
//
// The rule. A comparison (one case x one later server against the first,
// lib/family.ts) is judged only when its count of successful paired rounds
// reaches one of the looks, or at the end of its planned rounds (the final
// look: rounds lost to failures do not cost it). Each comparison gets
// alpha / comparisons (Bonferroni across the family: comparisons stop at
// different looks, so Holm's step-down, which needs every p at once, is not
// available during the run). That share is spent across the looks with the
// power-family spending function alpha_c * t^3 (t = rounds / cap: close to
// O'Brien-Fleming's shape, keeping most of the alpha for the last look, yet
// letting a large change stop at 16 or 24 rounds); the final look spends
// whatever is left. Each look's increment is its own two-sided significance
// level, so by the union bound the chance of any false `faster`/`slower` of a
// comparison over all its looks is at most alpha_c, and of the run at most
// alpha, without the numerical integration exact boundaries need (the price:
// slightly conservative). At a look the paired change (exact signed-rank p,
// Hodges-Lehmann estimate and interval) goes through changeVerdict with p
// scaled to the family: p x alpha / level, shown as the adjusted p.
//
// `same` (the interval inside ±noise) stops a comparison too. Its interval's
// 5% is spent across the looks the same way (power 1: t x 5%), so over all the
// looks a true change at the band's edge is called `same` at most 2.5% of the
// time, as by one 95% interval (an equivalence test, TOST at 2.5% a side,
// under the union bound).
//
// Rounds are assumed independent. At every look the lag-1 autocorrelation r
// of the paired ratios is checked (under independence about N(-1/n, 1/n)):
// the p and the interval are widened by the variance factor of an AR(1)
// mean, (1 + r') / (1 - r'), at r' = r + 1/n + one standard error (an upper
// bound; 0 when negative), and when the one-sided test of r > 0 gives
// p < 0.01 the look is inconclusive (the comparison runs on; at 0.05 the
// check held back 5% of clear changes at the last look for no gain). The figures go
// into compare.json. The price, at no correlation: 5% at paired SD 8% is
// found about 60% of the time instead of 82% (README). At lag-1 0.2 the A/A
// family-wise rate over 20 cases is about 2% (22.5% before), at 0.5 about 7% (86%).
//
// Pure: tested by seeded simulation (test/verdict.test.mts, test/family.test.mts).
import { erfc } from './stats.ts';
import { normalQuantile, pairedChange, pairedIntervalInside, signedRank, type Change } from './effect.ts';
import { comparisonAlpha, type Family } from './family.ts';
import { changeVerdict } from './verdict.ts';

export interface StoppingRule {
  kind: 'group-sequential';
  /** alpha_c * (rounds / last look)^spending_power is spent by each look. */
  spending: 'power';
  spending_power: number;
  /** Family-wise two-sided significance level. */
  alpha: number;
  /** Every comparison of the run (lib/family.ts); each gets alpha / family.comparisons. */
  family: Family;
  /** Successful paired rounds at which a comparison is judged, ascending; the last is the cap. */
  looks: number[];
  noise_pct: number;
  /** Coverage of the interval used for `same`, over all the looks. */
  confidence: number;
  /** (1 - confidence) * (rounds / cap)^same_spending_power is spent on `same` by each look. */
  same_spending_power: number;
  /** One-sided level of the lag-1 serial-correlation check that makes a look inconclusive. */
  serial_alpha: number;
}

export const DEFAULT_LOOKS = [6, 10, 16, 24, 36, 48];
export const DEFAULT_MAX_ROUNDS = 48;

export function stoppingRule(o: { alpha: number; noisePct: number; family: Family; maxRounds?: number; looks?: number[] }): StoppingRule {
  const max = o.maxRounds ?? DEFAULT_MAX_ROUNDS;
  if (!(Number.isInteger(max) && max >= 1)) throw new Error(`maximum rounds must be a positive integer, got ${max}`);
  const looks = (o.looks ?? DEFAULT_LOOKS).filter((l) => l < max);
  return {
    kind: 'group-sequential',
    spending: 'power',
    spending_power: 3,
    alpha: o.alpha,
    family: o.family,
    looks: [...looks, max],
    noise_pct: o.noisePct,
    confidence: 0.95,
    same_spending_power: 1,
    serial_alpha: 0.01,
  };
}

/** Each look's two-sided significance level for one comparison with no failed rounds: the increments of the spending function. */
export function lookLevels(rule: StoppingRule): number[] {
  const perComparison = comparisonAlpha(rule.family, rule.alpha);
  const last = rule.looks[rule.looks.length - 1];
  const spent = rule.looks.map((l) => perComparison * (l / last) ** rule.spending_power);
  return spent.map((s, i) => s - (i === 0 ? 0 : spent[i - 1]));
}

/** The lag-1 serial-correlation check of a comparison's paired ratios at a look. */
export interface SerialCheck {
  /** Lag-1 autocorrelation of the ratios in round order. */
  lag1: number;
  /** One-sided p of "no positive correlation" (normal: mean -1/n, variance (n-2)^2 / (n^2 (n-1))). */
  p: number;
  /** The factor the p's z and the interval's half-widths were divided and multiplied by: sqrt of (1 + r') / (1 - r'), r' the upper bound. */
  widenedBy: number;
  /** p < the rule's serial_alpha: the look is inconclusive. */
  flagged: boolean;
}

/** The lag-1 check; null below 4 rounds (too few to estimate). */
export function serialCheck(d: readonly number[], alpha: number): SerialCheck | null {
  const n = d.length;
  if (n < 4) return null;
  const m = d.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    den += (d[i] - m) ** 2;
    if (i + 1 < n) num += (d[i] - m) * (d[i + 1] - m);
  }
  const lag1 = den > 0 ? num / den : 0;
  const z = (lag1 + 1 / n) / Math.sqrt((n - 2) ** 2 / (n * n * (n - 1)));
  const p = 0.5 * erfc(z / Math.SQRT2);
  // An upper bound on the correlation, one standard error above the bias-corrected estimate: at 16 or 24 rounds
  // the estimate alone is too noisy (an AR(1) of 0.5 then still gave 19% false alarms over 20 cases; with the bound, 5%).
  const se = Math.sqrt((n - 2) ** 2 / (n * n * (n - 1)));
  const r = Math.min(0.9, Math.max(0, lag1 + 1 / n + se));
  return { lag1, p, widenedBy: Math.sqrt((1 + r) / (1 - r)), flagged: p < alpha };
}

export interface LookDecision {
  /** continue: not decided, more rounds to come; decided: stop; cap: the last look (or the end of the planned rounds), undecided. */
  state: 'continue' | 'decided' | 'cap';
  verdict: 'faster' | 'slower' | 'same' | 'inconclusive';
  /** Successful paired rounds judged. */
  rounds: number;
  /** The change with its interval (at this look's `same` confidence, widened for serial correlation); null when not needed. */
  change: Change | null;
  /** Two-sided signed-rank p of the rounds so far (widened for serial correlation). */
  p: number;
  /** This look's significance level for the comparison. */
  level: number;
  /** This look's two-sided alpha for the `same` interval. */
  sameAlpha: number;
  /** p scaled to the family and the look: min(1, p x alpha / level); < alpha exactly when p < level. */
  adjustedP: number;
  serial: SerialCheck | null;
}

/** The decision at a look from the paired throughput log ratios, given the look's levels. */
export function decide(d: readonly number[], level: number, sameAlpha: number, rule: StoppingRule, last: boolean): LookDecision {
  const rounds = d.length;
  const undecided = last ? 'cap' : 'continue';
  if (rounds === 0) return { state: undecided, verdict: 'inconclusive', rounds, change: null, p: 1, level, sameAlpha, adjustedP: 1, serial: null };
  const serial = serialCheck(d, rule.serial_alpha);
  const widen = serial?.widenedBy ?? 1;
  const exactP = signedRank(d).p;
  const p = widen > 1 && exactP < 1 ? erfc(normalQuantile(1 - exactP / 2) / widen / Math.SQRT2) : exactP;
  const adjustedP = level > 0 ? Math.min(1, (p * rule.alpha) / level) : 1;
  const band = rule.noise_pct / 100;
  const base = { rounds, p, level, sameAlpha, adjustedP, serial };
  // Neither significant nor inside the band: inconclusive whatever the interval, so it is not computed
  // (the rule runs at every look of every comparison; compare-runs reports the change from the rows).
  if (adjustedP >= rule.alpha && widen === 1 && !pairedIntervalInside(d, Math.log(1 - band), Math.log(1 + band), sameAlpha)) {
    return { state: undecided, verdict: 'inconclusive', change: null, ...base };
  }
  const raw = pairedChange(d, sameAlpha);
  const change = widen === 1 ? raw : { ...raw, lo: raw.estimate - widen * (raw.estimate - raw.lo), hi: raw.estimate + widen * (raw.hi - raw.estimate) };
  const v = changeVerdict(change, adjustedP, { alpha: rule.alpha, noisePct: rule.noise_pct }, 'higher');
  const verdict = serial?.flagged ? 'inconclusive' : v === 'better' ? 'faster' : v === 'worse' ? 'slower' : v;
  const state = verdict !== 'inconclusive' ? 'decided' : undecided;
  return { state, verdict, change, ...base };
}

/**
 * One comparison under the rule, round by round (in iteration order): it
 * takes a look when its successful rounds reach one of the looks, and its
 * final look at the end of the planned rounds or at the cap, whichever comes
 * first; it stops at a decided look or the final one. The same code judges
 * during the run (lib/adaptive.ts) and afterwards (lib/compare.ts), so what the
 * rule stopped on is what the comparison reports.
 */
export class SequentialComparison {
  /** The paired log ratios of the successful rounds so far. */
  readonly ratios: number[] = [];
  /** Set once it stops. */
  decision: LookDecision | null = null;
  /** The latest look taken. */
  latest: LookDecision | null = null;
  private spent = 0;
  private sameSpent = 0;
  private next = 0;

  constructor(private readonly rule: StoppingRule) {}

  /** One round recorded on both sides: its log ratio, or null when a side failed; `end` when no later round is planned. */
  round(ratio: number | null, end: boolean): LookDecision | null {
    if (this.decision) return null;
    if (ratio !== null) this.ratios.push(ratio);
    const n = this.ratios.length;
    const looks = this.rule.looks;
    const cap = looks[looks.length - 1];
    const final = end || n >= cap;
    const regular = ratio !== null && !final && n === looks[this.next];
    if (!final && !regular) return null;
    if (regular) this.next++;
    const t = final ? 1 : n / cap;
    const level = comparisonAlpha(this.rule.family, this.rule.alpha) * t ** this.rule.spending_power - this.spent;
    const sameAlpha = Number(((1 - this.rule.confidence) * t ** this.rule.same_spending_power - this.sameSpent).toPrecision(12));
    this.spent += level;
    this.sameSpent += sameAlpha;
    const d = decide(this.ratios, level, sameAlpha, this.rule, final);
    this.latest = d;
    if (d.state !== 'continue') this.decision = d;
    return d;
  }
}
