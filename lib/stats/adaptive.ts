// Adaptive rounds (--iterations auto): which cases of an interleaved run are
// decided, so that their remaining planned rounds are left out. A case is
// judged by the stopping rule (lib/stats/sequential.ts) each time the count of its
// measured rounds in which every side succeeded reaches one of the rule's
// looks: every later side against the first, on the paired throughput log
// ratios. It stops when every comparison is decided (faster, slower, same)
// or at the rule's last look, or, when failed rounds left it short of that
// look, once its planned rounds ran out (the final analysis, decideFinal).
//
//   const rounds = new AdaptiveRounds(rule, sides, warmup)
//   const d = rounds.record(side, row)   // a CaseStop when this row decided the case
//   rounds.stopped(caseKey(row))         // true: leave its remaining jobs out
//
// Pure: rows in, decisions out.
import { caseKey, throughputOf } from '../cases.ts';
import type { RawRow } from '../results.ts';
import { canStop, pooledLook, pooledPct, type PooledRule } from './pooled.ts';
import { decideAtLook, decideFinal, type LookDecision, type StoppingRule } from './sequential.ts';

export interface CaseStop {
  case: string;
  /** Measured rounds with every side successful when it stopped. */
  rounds: number;
  /** decided: every comparison reached a verdict; cap: the last look came first; pooled: the matrix-level rule (lib/stats/pooled.ts) let it stop as same. */
  state: 'decided' | 'cap' | 'pooled';
  /** Per later side (1, 2, ...): its verdict against side 0 at that look. */
  verdicts: LookDecision['verdict'][];
  /** state pooled: the pooled change (percent) and what it pooled when the case stopped. */
  pooled?: ReturnType<typeof pooledPct>;
}

export class AdaptiveRounds {
  /** case -> side -> iteration -> throughput (successes only). */
  private readonly seen = new Map<string, Map<number, number>[]>();
  private readonly stops = new Map<string, CaseStop>();
  private readonly looked = new Map<string, number>();
  /** case -> the sides that have recorded its last planned iteration (any outcome). */
  private readonly ended = new Map<string, Set<number>>();

  /** `pooled`: the matrix-level same (two sides only); null leaves every case to its own rule. */
  constructor(private readonly rule: StoppingRule, private readonly sides: number, private readonly warmup: number, private readonly pooled: PooledRule | null = null) {}

  /** Whether the case (caseKey) is decided or capped: its remaining jobs are left out. */
  stopped(key: string): boolean {
    return this.stops.has(key);
  }

  /** Every case stopped so far. */
  all(): CaseStop[] {
    return [...this.stops.values()];
  }

  /** Takes one measured row; returns the case's stop when this row completed a look that ends it. */
  record(side: number, row: RawRow): CaseStop | null {
    const key = caseKey(row);
    if (this.stops.has(key) || row.iteration <= this.warmup) return null;
    const bySide = this.seen.get(key) ?? Array.from({ length: this.sides }, () => new Map<number, number>());
    this.seen.set(key, bySide);
    const t = row.exit_reason === 'success' ? throughputOf(row) : null;
    if (t !== null && t > 0) bySide[side].set(row.iteration, t);
    const cap = this.rule.looks[this.rule.looks.length - 1];
    const ended = this.ended.get(key) ?? new Set<number>();
    this.ended.set(key, ended);
    if (row.iteration === this.warmup + cap) ended.add(side);
    // Rounds every side has measured successfully, in iteration order.
    const rounds = [...bySide[0].keys()].filter((i) => bySide.every((s) => s.has(i))).sort((a, b) => a - b);
    // Planned rounds all run, yet failed ones left fewer successful than the cap: the final analysis, on all of them.
    const ranOut = ended.size === this.sides && rounds.length > 0 && rounds.length < cap;
    const look = this.rule.looks.find((l) => l === rounds.length);
    if (!ranOut && (look === undefined || this.looked.get(key) === look)) return null;
    if (look !== undefined) this.looked.set(key, look);
    const ratiosOf = (s: Map<number, number>) => rounds.map((i) => Math.log(s.get(i)! / bySide[0].get(i)!));
    const decisions = bySide.slice(1).map((s) => (ranOut ? decideFinal(ratiosOf(s), this.rule) : decideAtLook(ratiosOf(s), look!, this.rule)));
    const decided = decisions.every((d) => d.state === 'decided');
    const last = ranOut || look === cap;
    const pooled = decided || look === undefined ? null : this.pooledStop(key, look);
    if (pooled) {
      this.stops.set(key, pooled);
      return pooled;
    }
    if (!decided && !last) return null;
    const stop: CaseStop = { case: key, rounds: rounds.length, state: decided ? 'decided' : 'cap', verdicts: decisions.map((d) => d.verdict) };
    this.stops.set(key, stop);
    return stop;
  }

  /** The pooled rule at this case's look: every case's paired rounds so far, decided cases with their verdicts. */
  private pooledStop(key: string, look: number): CaseStop | null {
    if (!this.pooled || this.sides !== 2 || look < this.pooled.min_rounds) return null;
    const cases = [...this.seen.entries()].map(([k, [a, b]]) => {
      const rounds = [...a.keys()].filter((i) => b.has(i)).sort((x, y) => x - y);
      return { key: k, ratios: rounds.map((i) => Math.log(b.get(i)! / a.get(i)!)), verdict: this.stops.get(k)?.verdicts[0] ?? null };
    });
    const p = pooledLook(cases, this.pooled);
    if (!p.change || !canStop(p, key, this.pooled)) return null;
    return { case: key, rounds: look, state: 'pooled', verdicts: ['same'], pooled: pooledPct(p.change) };
  }
}
