// When to stop adding interleaved rounds to a case: a group-sequential rule,
// declared before the run and recorded in config.json, so that looking at
// the data repeatedly does not inflate false alarms.
//
//   const rule = stoppingRule({ alpha: 0.05, noisePct: 3, cases: 20, maxRounds: 40 })
//   let look = nextLook(0, rule)                            // 6
//   ... run rounds until `look` measured rounds, then:
//   const d = decideAtLook(logRatios, look, rule)           // { state: 'continue', ... }
//   look = nextLook(look, rule)                             // 10, 16, 24, 40, then null
//
// The rule: a case is judged only at fixed round counts (the looks). Each
// case gets alpha / cases (Bonferroni across the matrix: cases stop at
// different looks, so Holm's step-down, which needs every p at once, is not
// available during the run). That share is spent across the looks with the
// power-family spending function alpha_c * t^3 (t = rounds / last look; it
// is close to O'Brien-Fleming's shape, keeping most of the alpha for the
// last look, yet lets a large change stop at 16 or 24 rounds). Each look's
// increment is used as its own two-sided significance level, so by the
// union bound the chance of any false `faster`/`slower` for a case over all
// looks is at most alpha_c, and for the matrix at most alpha, without the
// numerical integration exact group-sequential boundaries need (the price:
// slightly conservative). At a look the paired change (exact signed-rank p,
// Hodges-Lehmann estimate and 95% interval) goes through changeVerdict with
// p scaled to the family: p x alpha / level, shown as the adjusted p.
// `same` stops a case too; it spends no alpha, since it never raises the
// exit code. It is an equivalence test at 5% over all the looks: the
// interval it needs inside ±noise is a 97.5% one (same_confidence), since a
// 95% interval at each of 6 looks called a true ±3% change `same` 6.7% of
// the time (simulated, test/verdict.test.mts).
// When the run's rounds are found serially correlated (lib/stats/serial.ts;
// the rule checks at each look, serial_check), a look is read with the
// variance widened by the factor found: the intervals about their estimate,
// and p from the mean's t.
//
// Pure: tested by seeded simulation (test/verdict.test.mts).
import { pairedChange, pairedIntervalInside, signedRank, type Change } from './effect.ts';
import { serialP, widen } from './serial.ts';
import { changeVerdict } from './verdict.ts';

export interface StoppingRule {
  kind: 'group-sequential';
  /** alpha_c * (rounds / last look)^spending_power is spent by each look. */
  spending: 'power';
  spending_power: number;
  /** Family-wise two-sided significance level. */
  alpha: number;
  /** Comparisons in the family: the whole matrix's cases x the servers after the first (lib/run.ts adaptiveRule); each gets alpha / cases. */
  cases: number;
  /** Measured (post-warm-up) rounds at which a case is judged, ascending; the last is the cap. */
  looks: number[];
  noise_pct: number;
  /** Confidence of the interval shown. */
  confidence: number;
  /** Confidence of the interval that must lie inside ±noise for `same`, at any look (absent in runs before it: confidence). */
  same_confidence?: number;
  /**
   * true: the run checked its rounds for serial correlation at each look and read the look with the variance
   * factor found (ab.stops variance_factor_by_side); compare-runs judges as it did. Absent in runs before it:
   * compare-runs checks once, at the end.
   */
  serial_check?: boolean;
}

/** `same` over all the looks stays an equivalence test at 5% (simulated at the ±noise boundary, test/verdict.test.mts). */
export const SAME_CONFIDENCE = 0.975;

export const DEFAULT_LOOKS = [6, 10, 16, 24, 36, 48];
export const DEFAULT_MAX_ROUNDS = 48;

export function stoppingRule(o: { alpha: number; noisePct: number; cases: number; maxRounds?: number; looks?: number[] }): StoppingRule {
  const max = o.maxRounds ?? DEFAULT_MAX_ROUNDS;
  if (!(Number.isInteger(max) && max >= 1)) throw new Error(`maximum rounds must be a positive integer, got ${max}`);
  if (!(Number.isInteger(o.cases) && o.cases >= 1)) throw new Error(`cases must be a positive integer, got ${o.cases}`);
  const looks = (o.looks ?? DEFAULT_LOOKS).filter((l) => l < max);
  return {
    kind: 'group-sequential',
    spending: 'power',
    spending_power: 3,
    alpha: o.alpha,
    cases: o.cases,
    looks: [...looks, max],
    noise_pct: o.noisePct,
    confidence: 0.95,
    same_confidence: SAME_CONFIDENCE,
    serial_check: true,
  };
}

/** The alpha of the interval `same` must fit inside ±noise (a rule recorded before same_confidence: its shown interval's). */
export function sameAlpha(rule: StoppingRule): number {
  return Number((1 - (rule.same_confidence ?? rule.confidence)).toFixed(12));
}

/** Each look's two-sided significance level for one case: the increments of the spending function. */
export function lookLevels(rule: StoppingRule): number[] {
  const perCase = rule.alpha / rule.cases;
  const last = rule.looks[rule.looks.length - 1];
  const spent = rule.looks.map((l) => perCase * (l / last) ** rule.spending_power);
  return spent.map((s, i) => s - (i === 0 ? 0 : spent[i - 1]));
}

/** The next round count at which to look, after `rounds` measured rounds; null once the cap is reached. */
export function nextLook(rounds: number, rule: StoppingRule): number | null {
  return rule.looks.find((l) => l > rounds) ?? null;
}

/** The last look a case with `rounds` measured rounds has passed; null before the first. */
export function lastLookReached(rounds: number, rule: StoppingRule): number | null {
  const passed = rule.looks.filter((l) => l <= rounds);
  return passed.length ? passed[passed.length - 1] : null;
}

export interface LookDecision {
  /** continue: not decided, more rounds to come; decided: stop; cap: the last look, undecided. */
  state: 'continue' | 'decided' | 'cap';
  verdict: 'faster' | 'slower' | 'same' | 'inconclusive';
  /** The change with its interval; null when the verdict did not need it (inconclusive: pairedChange(logRatios) gives it). */
  change: Change | null;
  /** Two-sided signed-rank p of the rounds so far. */
  p: number;
  /** This look's significance level for the case. */
  level: number;
  /** p scaled to the family and the look: min(1, p x alpha / level); < alpha exactly when p < level. */
  adjustedP: number;
}

/**
 * The decision for one case at a look, from its paired throughput log ratios
 * log(candidate_i / baseline_i) (the first `look` of them are used).
 * `inflation`: the variance factor of serially correlated rounds (lib/stats/serial.ts), 1 when independent.
 */
export function decideAtLook(logRatios: readonly number[], look: number, rule: StoppingRule, inflation = 1): LookDecision {
  const i = rule.looks.indexOf(look);
  if (i < 0) throw new Error(`${look} is not one of the rule's looks (${rule.looks.join(', ')})`);
  if (logRatios.length < look) throw new Error(`look at ${look} rounds, but only ${logRatios.length} measured`);
  return decideWith(logRatios.slice(0, look), lookLevels(rule)[i], i === rule.looks.length - 1, rule, inflation);
}

/**
 * The final analysis of a case whose planned rounds ran out before its
 * successful rounds reached the last look (some rounds failed): all its
 * rounds, at what its share had left after the last look before them. The
 * levels it used still sum to at most its share, so the promise holds, and
 * one failed round no longer drops the case back to the look before (36).
 */
export function finalLevel(rounds: number, rule: StoppingRule): number {
  const perCase = rule.alpha / rule.cases;
  const prev = rule.looks.filter((l) => l < rounds).at(-1);
  return perCase - (prev === undefined ? 0 : perCase * (prev / rule.looks[rule.looks.length - 1]) ** rule.spending_power);
}

/** decideAtLook for a case whose planned rounds ran out at `logRatios.length` successful rounds, short of the cap. */
export function decideFinal(logRatios: readonly number[], rule: StoppingRule, inflation = 1): LookDecision {
  return decideWith(logRatios, finalLevel(logRatios.length, rule), true, rule, inflation);
}

function decideWith(d: readonly number[], level: number, last: boolean, rule: StoppingRule, inflation: number): LookDecision {
  const p = inflation > 1 ? serialP(d, inflation) : signedRank(d).p;
  const adjustedP = Math.min(1, (p * rule.alpha) / level);
  const band = rule.noise_pct / 100;
  const intervalAlpha = Number((1 - rule.confidence).toFixed(12));
  const lo = Math.log(1 - band), hi = Math.log(1 + band);
  const wideSame = inflation > 1 ? widen(pairedChange(d, sameAlpha(rule)), inflation) : null;
  const same = wideSame ? wideSame.lo >= lo && wideSame.hi <= hi : pairedIntervalInside(d, lo, hi, sameAlpha(rule));
  // Neither significant nor `same`: inconclusive whatever the interval, so it is not computed
  // (the rule runs at every look of every case; compare-runs reports the change from the rows).
  if (adjustedP >= rule.alpha && !same) {
    return { state: last ? 'cap' : 'continue', verdict: 'inconclusive', change: null, p, level, adjustedP };
  }
  const shown = pairedChange(d, intervalAlpha);
  const change = inflation > 1 ? { ...shown, ...widen(shown, inflation) } : shown;
  const v = changeVerdict(change, adjustedP, { alpha: rule.alpha, noisePct: rule.noise_pct }, 'higher');
  // The shown interval may lie inside ±noise while the wider one for `same` does not.
  const verdict = v === 'better' ? 'faster' : v === 'worse' ? 'slower' : v === 'same' && !same ? 'inconclusive' : v;
  const state = verdict !== 'inconclusive' ? 'decided' : last ? 'cap' : 'continue';
  return { state, verdict, change, p, level, adjustedP };
}
