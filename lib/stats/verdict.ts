// The one place a change with its interval becomes a verdict.
//
//   changeVerdict({ estimate, lo, hi }, pAdjusted, { alpha: 0.05, noisePct: 3 }, 'higher')  // 'worse'
//
// The rule, on the change as a percent of the baseline (candidate / baseline - 1):
//   better / worse  the (family-adjusted) p < alpha, the interval lies wholly on
//                   one side of 0, and the estimate is at least the noise band
//                   (|estimate| >= noise) on that side;
//   same            otherwise, when the whole interval lies inside ±noise;
//   inconclusive    anything else: the sample cannot tell.
// "Estimate beyond the band" rather than "interval beyond the band": at a CV
// of 10%, 48 paired rounds of a true 10% slowdown give an interval (at the
// matrix's per-case level, alpha / 20) wholly past -3% in 65% of cases, but
// past 0 with the estimate beyond -3% in 97% (simulated). The family-wise p
// already bounds false alarms; the band keeps tiny but significant changes
// from being called (they are `same`, or inconclusive).
//
// Pure: tested on literal data and by simulation (test/verdict.test.mts).
import { normalQuantile, pctOf } from './effect.ts';

export interface Interval {
  /** Log of candidate / baseline and its interval's bounds (may be infinite). */
  estimate: number;
  lo: number;
  hi: number;
}

export interface VerdictRule {
  /** Family-wise significance level, two-sided. */
  alpha: number;
  /** Changes inside ±noisePct percent are noise. */
  noisePct: number;
}

export type ChangeVerdict = 'better' | 'worse' | 'same' | 'inconclusive';

/** `better` means higher for throughput, lower for durations and memory. */
export function changeVerdict(c: Interval, p: number, rule: VerdictRule, better: 'higher' | 'lower'): ChangeVerdict {
  const [est, lo, hi] = [pctOf(c.estimate), pctOf(c.lo), pctOf(c.hi)];
  const up = lo > 0 && est >= rule.noisePct;
  const down = hi < 0 && est <= -rule.noisePct;
  if (p < rule.alpha && (up || down)) return up === (better === 'higher') ? 'better' : 'worse';
  if (lo >= -rule.noisePct && hi <= rule.noisePct) return 'same';
  return 'inconclusive';
}

export interface Detectable {
  /** The smallest change (percent) this sample's spread could detect with 80% power at the level it must reach. */
  pct: number;
  /** Measured iterations per side (pairs, when paired) that would detect a change of the noise band. */
  iterations: number;
}

/**
 * What an inconclusive sample could have told: from the standard error of
 * the log values (sd / sqrt(n) per side, or of the paired log ratios), the
 * change that a test at `level` (two-sided) detects with 80% power is
 * (z_{1-level/2} + z_{0.8}) x SE; the iterations that would bring that down
 * to the noise band scale with its square. Never fewer than the exact test
 * needs to reach `level` at all (`minIterations`). null for fewer than 2
 * values a side.
 */
export function detectable(
  spreadSd: number,
  n: number,
  paired: boolean,
  level: number,
  noisePct: number,
  minIterations: number,
): Detectable | null {
  if (n < 2) return null;
  // No spread at all: any change shows once the exact test can reach the level.
  if (!(spreadSd > 0)) return { pct: 0, iterations: minIterations };
  const factor = paired ? 1 / n : 2 / n;
  const z = normalQuantile(1 - level / 2) + normalQuantile(0.8);
  const mde = z * spreadSd * Math.sqrt(factor);
  const band = Math.log(1 + Math.max(noisePct, 0.1) / 100);
  return { pct: pctOf(mde), iterations: Math.max(minIterations, Math.ceil(n * (mde / band) ** 2)) };
}

/** Sample standard deviation. */
export function sd(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}
