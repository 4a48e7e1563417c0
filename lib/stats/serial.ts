// Rounds that are not independent (issue 27, item 8). Every verdict assumes
// the paired per-round ratios of a case are independent. When consecutive
// rounds are positively correlated (a provider that keeps state from round
// to round, drift one side feels and the other does not), a mean's variance
// is (1 + phi) / (1 - phi) times what the tests assume at lag-1
// correlation phi, and an A/A alarms far more than alpha (simulated at 0.1,
// 0.2 and 0.5: 8.6%, 19% and 84% of 20-case runs).
//
//   const check = serialCheck([case1Ratios, case2Ratios, ...])   // each in round order
//   check.present      // the matrix's rounds are positively correlated (z > 1.645)
//   check.inflation    // (1 + phi) / (1 - phi): the variance factor to widen by; 1 when not present
//   widen(change, check.inflation)    // the interval, sqrt(inflation) times wider about its estimate
//   serialP(ratios, check.inflation)  // two-sided p of their mean, its variance times inflation (Student's t)
//
// The test pools the cases: each case's lag-1 autocorrelation r_i is about
// normal with mean -1/n_i and variance 1/n_i when rounds are independent, so
// z = sum sqrt(n_i) (r_i + 1/n_i) / sqrt(cases) is about standard normal.
// One case alone has little power (24 rounds at phi 0.2: z of about 1); 20
// cases together find it. phi is the rounds-weighted mean of each case's
// estimate corrected for the bias of short series, (n r + 1) / (n - 4).
// The stopping rule runs the check at every look (serial_check), over every
// comparison with at least 16 rounds (the third look), so that a case judged
// first in its round still sees the others. Earlier looks alarm too rarely
// for the check to matter there, and a lag-1 over 6 or 10 rounds is too
// noisy to widen by: 20-case A/A runs at phi 0.5 alarmed in 3.3% of runs
// checked from 16 rounds, 2.3% from 6 (test/family.test.mts), while 5 cases
// x 10 rounds lost a clear change (below) in 1.9% of runs.
//
// The check waits for 48 rounds in all. With fewer, phi is so uncertain that
// a false finding (up to 5% of runs, its level) reads it near its cap and
// leaves too few degrees of freedom for any verdict: a case 2 SD per round
// slower, found in every independent run, was made inconclusive in 2.4% of
// 1-case 10-round runs and 3.5% of 1-case 16-round ones; it is in 0.2% at 3
// cases x 16 rounds and 0.0% at 2 x 24 (10 000 seeded runs each,
// test/serial.test.mts). A true correlation is found too rarely there to pay
// for it (phi 0.5 over 9 rounds: 18% of runs). A CI run lost a 4x slowdown
// over 9 rounds so.
// One-sided at 5%: only positive correlation inflates false alarms (the
// negative lag-1 this machine shows, -0.46 to +0.09, makes the tests
// conservative), and a false finding costs only a slightly wider interval.
//
// Why p is read again from the mean and not from the rank test's p: a
// signed-rank p is bounded by its rounds (10 rounds all one way give 0.002,
// however far apart), so shrinking its z lost every verdict decided at the
// first look, a 100% slowdown among them (a real run: lag-1 0.48 over 26
// rounds made an 8MiB case slowed 100% inconclusive). The mean's t, with the
// variance corrected for the correlation, keeps what the size of a change
// says.
//
// Pure: tested by seeded simulation (test/serial.test.mts).
import tCdf from '@stdlib/stats-base-dists-t-cdf';
import { sd, type Interval } from './verdict.ts';

/** Cases with fewer rounds than this are left out of the check: the third look. */
export const SERIAL_MIN_ROUNDS = 16;
/** The check runs only when the cases it keeps have this many rounds in all. */
export const SERIAL_MIN_TOTAL_ROUNDS = 48;
/** One-sided 5%. */
export const SERIAL_Z = 1.645;

export interface SerialCheck {
  /** Cases and rounds the check used. */
  cases: number;
  rounds: number;
  /** Estimated lag-1 correlation of the paired ratios, corrected for the bias of short series. */
  r1: number;
  z: number;
  present: boolean;
  /** (1 + phi) / (1 - phi) with phi = r1 + 1 / sqrt(rounds) (at most 0.9) when present; 1 otherwise. */
  inflation: number;
}

/** The sample lag-1 autocorrelation; 0 for a constant series. */
export function lag1(xs: readonly number[]): number {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) {
    den += (xs[i] - mean) ** 2;
    if (i + 1 < n) num += (xs[i] - mean) * (xs[i + 1] - mean);
  }
  return den > 0 ? num / den : 0;
}

/** The check over every case's ratios in round order; null when its cases of SERIAL_MIN_ROUNDS rounds have fewer than SERIAL_MIN_TOTAL_ROUNDS in all. */
export function serialCheck(series: readonly (readonly number[])[]): SerialCheck | null {
  const used = series.filter((s) => s.length >= SERIAL_MIN_ROUNDS);
  const sample = used.map((s) => ({ n: s.length, r: lag1(s) }));
  const rounds = sample.reduce((a, c) => a + c.n, 0);
  if (rounds < SERIAL_MIN_TOTAL_ROUNDS) return null;
  const z = sample.reduce((a, c) => a + Math.sqrt(c.n) * (c.r + 1 / c.n), 0) / Math.sqrt(used.length);
  // phi from E[r] = phi - (1 + 4 phi) / n (Kendall's bias of the lag-1 estimate with the mean unknown): short series
  // read phi far too low, and a rule that checks at its first looks would widen too little.
  const r1 = Math.max(-1, Math.min(1, sample.reduce((a, c) => a + c.n * ((c.n * c.r + 1) / (c.n - 4)), 0) / rounds));
  const present = z > SERIAL_Z && r1 > 0;
  // The factor from phi one standard error (1 / sqrt(rounds)) above its estimate: a factor read too low alarms, and
  // the rule reads it at every look (AR(1) at 0.5, 400 A/A runs: 4.8% from the estimate itself).
  const phi = Math.min(0.9, r1 + 1 / Math.sqrt(rounds));
  return { cases: used.length, rounds, r1, z, present, inflation: present ? (1 + phi) / (1 - phi) : 1 };
}

/** The interval sqrt(inflation) times wider about its estimate (log scale). */
export function widen(c: Interval, inflation: number): Interval {
  const f = Math.sqrt(inflation);
  return { estimate: c.estimate, lo: c.estimate - (c.estimate - c.lo) * f, hi: c.estimate + (c.hi - c.estimate) * f };
}

/**
 * The two-sided p of a series' mean being 0, its variance inflation times the independent one's. Student's t on
 * n (1 - phi^2) / (1 + phi^2) - 1 degrees of freedom, phi = (inflation - 1) / (inflation + 1): the sample variance of
 * correlated rounds is as uncertain as that many independent ones' (Bartlett). On n - 1 it alarmed 1.4-1.7x its
 * level at phi 0.5 (AR(1), 10-48 rounds, level 0.001, the true factor, 200 000 series); on these, 0.2-0.9x
 * (test/serial.test.mts: the same at level 0.01).
 */
export function serialP(d: readonly number[], inflation: number): number {
  const n = d.length;
  if (n < 2) return 1;
  const mean = d.reduce((a, b) => a + b, 0) / n;
  const s = sd(d);
  if (s === 0) return mean === 0 ? 1 : 0;
  const phi = (inflation - 1) / (inflation + 1);
  const df = Math.max(1, (n * (1 - phi * phi)) / (1 + phi * phi) - 1);
  return 2 * tCdf(-Math.abs(mean) / (s * Math.sqrt(inflation / n)), df);
}
