// Adaptive rounds (--iterations auto): which comparisons of an interleaved
// run are decided, so that the remaining planned rounds of a decided one are
// left out. A comparison is a case x a later server against the first; it is
// judged by the stopping rule (lib/sequential.ts) on the paired throughput
// log ratios of its rounds, round by round in iteration order. An iteration
// of N uploads at once is its aggregate (lib/cases.ts iterationRows), as
// compare-runs judges it. A later server stops running a case once its
// comparison stopped; the first server, once every comparison of the case did.
//
//   const rounds = new AdaptiveRounds(rule, sides, warmup)
//   const stops = rounds.record(side, rows)   // the comparisons these rows stopped (rows: one iteration's)
//   rounds.skip(side, caseKey(row))           // true: leave this side's remaining jobs of the case out
//
// compare-runs replays the same rounds through judgeRounds, so ab.stops and
// compare.md agree. Pure: rows in, decisions out; the state is derived from
// the rows alone (a resumed run feeds its rows again).
import { caseKey, iterationRows, throughputOf } from './cases.ts';
import type { RawRow } from './results.ts';
import { SequentialComparison, type LookDecision, type StoppingRule } from './sequential.ts';

export interface ComparisonStop {
  case: string;
  /** The later server (1, 2, ...) compared with the first. */
  side: number;
  /** Successful paired rounds judged when it stopped. */
  rounds: number;
  /** decided: a verdict; cap: the last look (or the end of the planned rounds) came first. */
  state: 'decided' | 'cap';
  verdict: LookDecision['verdict'];
}

/** log(candidate / baseline) of an iteration's throughput, or null when either side failed. */
function ratioOf(base: RawRow, cand: RawRow): number | null {
  if (base.exit_reason !== 'success' || cand.exit_reason !== 'success') return null;
  const [a, b] = [throughputOf(base), throughputOf(cand)];
  return a !== null && b !== null && a > 0 && b > 0 ? Math.log(b / a) : null;
}

/**
 * One comparison's rounds: iteration rows of each side come in (any order);
 * a round goes to the rule once both sides have its iteration, in iteration
 * order from the first after the warm-up. `used` holds the iterations of the
 * successful rounds, in the order the rule took them.
 */
export class ComparisonRounds {
  readonly rule: SequentialComparison;
  readonly used: number[] = [];
  private readonly rows: [Map<number, RawRow>, Map<number, RawRow>] = [new Map(), new Map()];
  private nextIteration: number;
  private readonly lastIteration: number;

  constructor(rule: StoppingRule, warmup: number) {
    this.rule = new SequentialComparison(rule);
    this.nextIteration = warmup + 1;
    this.lastIteration = warmup + rule.looks[rule.looks.length - 1];
  }

  /** An iteration's (aggregate) row of the baseline (0) or the candidate (1); the decision when it stopped the comparison. */
  add(which: 0 | 1, row: RawRow): LookDecision | null {
    if (row.iteration < this.nextIteration || this.rule.decision) return null;
    this.rows[which].set(row.iteration, row);
    let stop: LookDecision | null = null;
    for (;;) {
      const [a, b] = [this.rows[0].get(this.nextIteration), this.rows[1].get(this.nextIteration)];
      if (!a || !b || this.rule.decision) return stop;
      const r = ratioOf(a, b);
      if (r !== null) this.used.push(this.nextIteration);
      this.rule.round(r, this.nextIteration >= this.lastIteration);
      if (this.rule.decision) stop = this.rule.decision;
      this.nextIteration++;
    }
  }
}

/** Both sides' iteration rows of a case (measured or not) judged by the rule, as the run judged them. */
export function judgeRounds(base: readonly RawRow[], cand: readonly RawRow[], rule: StoppingRule, warmup: number): ComparisonRounds {
  const c = new ComparisonRounds(rule, warmup);
  const byIteration = (rows: readonly RawRow[]) => [...rows].sort((x, y) => x.iteration - y.iteration);
  for (const r of byIteration(base)) c.add(0, r);
  for (const r of byIteration(cand)) c.add(1, r);
  return c;
}

export class AdaptiveRounds {
  /** case -> its comparisons, one per later side (index side - 1). */
  private readonly cases = new Map<string, ComparisonRounds[]>();
  private readonly stops: ComparisonStop[] = [];

  constructor(private readonly rule: StoppingRule, private readonly sides: number, private readonly warmup: number) {}

  /** Whether this side's remaining jobs of the case (caseKey) are left out: its comparison stopped, or for the first side all of them. */
  skip(side: number, key: string): boolean {
    const cs = this.cases.get(key);
    if (!cs) return false;
    return side === 0 ? cs.every((c) => c.rule.decision !== null) : cs[side - 1].rule.decision !== null;
  }

  /** Every comparison stopped so far. */
  all(): ComparisonStop[] {
    return [...this.stops];
  }

  /** Takes one iteration's rows of a side (N rows for N uploads at once); returns the comparisons they stopped. */
  record(side: number, rows: readonly RawRow[]): ComparisonStop[] {
    if (rows.length === 0) return [];
    const key = caseKey(rows[0]);
    const cs = this.cases.get(key) ?? Array.from({ length: this.sides - 1 }, () => new ComparisonRounds(this.rule, this.warmup));
    this.cases.set(key, cs);
    const [row] = iterationRows(rows);
    const out: ComparisonStop[] = [];
    cs.forEach((c, i) => {
      if (side !== 0 && side !== i + 1) return;
      const d = c.add(side === 0 ? 0 : 1, row);
      if (d) out.push({ case: key, side: i + 1, rounds: d.rounds, state: d.state === 'decided' ? 'decided' : 'cap', verdict: d.verdict });
    });
    this.stops.push(...out);
    return out;
  }
}
