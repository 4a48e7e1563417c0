// Adaptive rounds (--iterations auto): which cases of an interleaved run are
// decided, so that their remaining planned rounds are left out. Each
// comparison of a case (every later side against the first) is judged by
// the stopping rule (lib/stats/sequential.ts) on the rounds both of its
// sides measured successfully, as compare-runs pairs them, each time their
// count reaches one of the rule's looks. A comparison decided (faster,
// slower, same) keeps its verdict and is not judged again; one that
// reaches the rule's last look undecided is capped; when failed rounds
// left it short of the last look once the case's planned rounds ran out,
// it gets the final analysis (decideFinal). The case stops when every
// comparison has ended, and records each one's rounds (rounds_by_side),
// which compare-runs judges it at. With the rule's serial_check, each
// judgement first checks every comparison's rounds so far for serial
// correlation (lib/stats/serial.ts) and, where found, reads the look with
// the variance widened by its factor, recorded (variance_factor_by_side) so
// that compare-runs judges alike.
//
//   const rounds = new AdaptiveRounds(rule, sides, warmup)
//   const d = rounds.record(side, row)   // a CaseStop when this row ended the case
//   rounds.stopped(caseKey(row))         // true: leave its remaining jobs out
//
// Pure: rows in, decisions out.
import { caseKey, throughputOf } from '../cases.ts';
import type { RawRow } from '../results.ts';
import { canStop, pooledLook, pooledPct, type PooledRule } from './pooled.ts';
import { decideAtLook, decideFinal, type LookDecision, type StoppingRule } from './sequential.ts';
import { serialCheck } from './serial.ts';

export interface CaseStop {
  case: string;
  /** Rounds of its longest comparison when it stopped: the measured rounds with both of its sides successful. */
  rounds: number;
  /** decided: every comparison reached a verdict; cap: some comparison reached the last look first; pooled: the matrix-level rule (lib/stats/pooled.ts) let it stop as same. */
  state: 'decided' | 'cap' | 'pooled';
  /** Per later side (1, 2, ...): its verdict against side 0 when its comparison ended. */
  verdicts: LookDecision['verdict'][];
  /** Per later side: the rounds its comparison was judged at (absent in runs before it: every side at `rounds`). */
  rounds_by_side?: number[];
  /** Per later side: the serial check's variance factor its comparison was judged with; absent when every one was 1. */
  variance_factor_by_side?: number[];
  /** state pooled: the pooled change (percent) and what it pooled when the case stopped. */
  pooled?: ReturnType<typeof pooledPct>;
}

/** How one comparison of a case ended. */
interface Ended {
  verdict: LookDecision['verdict'];
  rounds: number;
  decided: boolean;
  inflation: number;
}

export class AdaptiveRounds {
  /** case -> side -> iteration -> throughput (successes only). */
  private readonly seen = new Map<string, Map<number, number>[]>();
  private readonly stops = new Map<string, CaseStop>();
  /** `${case}/${side}` -> the look last judged. */
  private readonly looked = new Map<string, number>();
  /** case -> later side -> how its comparison ended. */
  private readonly comparisons = new Map<string, Map<number, Ended>>();
  /** case -> the sides that have recorded its last planned iteration (any outcome). */
  private readonly ended = new Map<string, Set<number>>();
  /** case -> how many throughputs it has taken; `${case}/${side}` -> its paired ratios as of that count. */
  private readonly version = new Map<string, number>();
  private readonly ratios = new Map<string, { stamp: number; ratios: number[] }>();

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

  /** Takes one measured row; returns the case's stop when this row ended its last open comparison. */
  record(side: number, row: RawRow): CaseStop | null {
    const key = caseKey(row);
    if (this.stops.has(key) || row.iteration <= this.warmup) return null;
    const bySide = this.seen.get(key) ?? Array.from({ length: this.sides }, () => new Map<number, number>());
    this.seen.set(key, bySide);
    const t = row.exit_reason === 'success' ? throughputOf(row) : null;
    if (t !== null && t > 0) {
      bySide[side].set(row.iteration, t);
      this.version.set(key, (this.version.get(key) ?? 0) + 1);
    }
    const cap = this.rule.looks[this.rule.looks.length - 1];
    const ended = this.ended.get(key) ?? new Set<number>();
    this.ended.set(key, ended);
    if (row.iteration === this.warmup + cap) ended.add(side);
    const done = this.comparisons.get(key) ?? new Map<number, Ended>();
    this.comparisons.set(key, done);
    // The comparisons this row can move: side 0's row moves them all, a later side's only its own.
    for (const s of side === 0 ? Array.from({ length: this.sides - 1 }, (_, i) => i + 1) : [side]) {
      if (done.has(s)) continue;
      // Counted before the ratios are built: most rows reach no look (the plan simulates thousands of runs).
      const paired = this.pairedCount(key, s);
      // Planned rounds all run, yet failed ones left fewer successful than the cap: the final analysis, on all of them.
      const ranOut = ended.has(0) && ended.has(s) && paired > 0 && paired < cap;
      const look = this.rule.looks.find((l) => l === paired);
      if (!ranOut && (look === undefined || this.looked.get(`${key}/${s}`) === look)) continue;
      // The rounds both sides of this comparison measured successfully, in iteration order: compare-runs' pairs.
      const ratios = this.pairedRatios(key, s);
      if (look !== undefined) this.looked.set(`${key}/${s}`, look);
      const inflation = this.serialInflation();
      const d = ranOut ? decideFinal(ratios, this.rule, inflation) : decideAtLook(ratios, look!, this.rule, inflation);
      if (d.state !== 'decided' && !ranOut) {
        const pooled = this.pooledStop(key, look!, inflation);
        if (pooled) {
          this.stops.set(key, pooled);
          return pooled;
        }
      }
      if (d.state === 'decided' || ranOut || look === cap) done.set(s, { verdict: d.verdict, rounds: ratios.length, decided: d.state === 'decided', inflation });
    }
    if (done.size < this.sides - 1) return null;
    const all = Array.from({ length: this.sides - 1 }, (_, i) => done.get(i + 1)!);
    const stop: CaseStop = {
      case: key, rounds: Math.max(...all.map((e) => e.rounds)), state: all.every((e) => e.decided) ? 'decided' : 'cap',
      verdicts: all.map((e) => e.verdict), rounds_by_side: all.map((e) => e.rounds),
      ...(all.some((e) => e.inflation > 1) ? { variance_factor_by_side: all.map((e) => e.inflation) } : {}),
    };
    this.stops.set(key, stop);
    return stop;
  }

  /** The pooled rule at this case's look: every case's paired rounds so far, decided cases with their verdicts. */
  private pooledStop(key: string, look: number, inflation: number): CaseStop | null {
    if (!this.pooled || this.sides !== 2 || look < this.pooled.min_rounds) return null;
    const cases = [...this.seen.keys()].map((k) => ({ key: k, ratios: this.pairedRatios(k, 1), verdict: this.stops.get(k)?.verdicts[0] ?? null }));
    const p = pooledLook(cases, this.pooled, inflation);
    if (!p.change || !canStop(p, key, this.pooled)) return null;
    return {
      case: key, rounds: look, state: 'pooled', verdicts: ['same'], rounds_by_side: [look], pooled: pooledPct(p.change),
      ...(inflation > 1 ? { variance_factor_by_side: [inflation] } : {}),
    };
  }

  /** The serial check's variance factor over every comparison's rounds so far; 1 when not found, or the rule does not check. */
  private serialInflation(): number {
    if (!this.rule.serial_check) return 1;
    const series = [...this.seen.keys()].flatMap((k) => Array.from({ length: this.sides - 1 }, (_, i) => this.pairedRatios(k, i + 1)));
    return serialCheck(series)?.inflation ?? 1;
  }

  /** How many rounds both side `side` and side 0 of a case measured successfully. */
  private pairedCount(key: string, side: number): number {
    const bySide = this.seen.get(key)!;
    let n = 0;
    for (const i of bySide[0].keys()) if (bySide[side].has(i)) n++;
    return n;
  }

  /** Side `side` against side 0 of a case: the log ratios of the rounds both measured successfully, in iteration order. */
  private pairedRatios(key: string, side: number): number[] {
    const bySide = this.seen.get(key)!;
    // Every look of every case asks for every case's ratios (the pool, the serial check): built once per change.
    const stamp = this.version.get(key) ?? 0;
    const cached = this.ratios.get(`${key}/${side}`);
    if (cached?.stamp === stamp) return cached.ratios;
    const rounds = [...bySide[0].keys()].filter((i) => bySide[side].has(i)).sort((a, b) => a - b);
    const ratios = rounds.map((i) => Math.log(bySide[side].get(i)! / bySide[0].get(i)!));
    this.ratios.set(`${key}/${side}`, { stamp, ratios });
    return ratios;
  }
}
