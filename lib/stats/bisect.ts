// Bisection of a metric over a commit range (run-tests --bisect GOOD BAD): the
// pure part. Which metric and which way is worse; how a look judges a pair of
// interleaved sides (the group-sequential rule of lib/stats/sequential.ts for the
// ratio metrics, an exact sign test for survival); how a step's two
// judgements (range's good end -> midpoint, midpoint -> range's bad end)
// classify the midpoint; the next midpoint with skipped commits left out, as
// `git bisect skip` does; and the final answer. lib/bisect-run.ts measures.
//
//   const judge = new StepRounds(rule, metricByName('throughput'), warmup, 3, [[0, 1], [1, 2]], stopWhenClassified('down'))
//   classifyStep('same', 'down', 'down')              // 'good': the midpoint is like the good end
//   nextMidpoint(7, states); answer(7, states)        // indices into GOOD..BAD in history order
//
// Pure: rows and states in, decisions out (test/bisect.test.mts).
import { caseKey, iterationRows } from '../cases.ts';
import { METRICS, metricValue, type MetricDef } from './compare.ts';
import { pairedChange } from './effect.ts';
import type { RawRow } from '../results.ts';
import { decideAtLook, lookLevels, type StoppingRule } from './sequential.ts';

export interface BisectMetric {
  name: string;
  title: string;
  unit: string;
  /** Which way is worse: the words say "worse" and "better" the right way round. */
  worse: 'higher' | 'lower';
  /** ratio: paired log ratios of a measured success's value; rate: the share of iterations that succeed. */
  kind: 'ratio' | 'rate';
  /** The compare-runs metric it reads (ratio metrics). */
  key: MetricDef['key'] | null;
}

const ratio = (name: string, key: MetricDef['key']): BisectMetric => {
  const d = METRICS.find((x) => x.key === key)!;
  return { name, title: d.title, unit: d.unit, worse: d.better === 'higher' ? 'lower' : 'higher', kind: 'ratio', key };
};

export const BISECT_METRICS: BisectMetric[] = [
  ratio('throughput', 'throughput_mib_s'),
  ratio('duration', 'duration_seconds'),
  ratio('processing', 'processing_seconds'),
  ratio('server_peak_rss', 'server_peak_rss_bytes'),
  ratio('peak_memory', 'peak_memory_bytes'),
  ratio('cpu_per_gib', 'cpu_seconds_per_gib'),
  ratio('write_amplification', 'write_amplification'),
  ratio('download', 'download_mib_s'),
  { name: 'survival', title: 'Survival, the share of iterations that succeed', unit: 'share', worse: 'lower', kind: 'rate', key: null },
];

/** A metric by its --metric name, or null. */
export function metricByName(name: string): BisectMetric | null {
  return BISECT_METRICS.find((m) => m.name === name) ?? null;
}

/** One iteration's value: the metric of a success (null for a failure) or, for survival, 1 success / 0 failure. */
export function iterationValue(metric: BisectMetric, row: RawRow): number | null {
  if (metric.kind === 'rate') return row.exit_reason === 'success' ? 1 : 0;
  if (row.exit_reason !== 'success') return null;
  const v = metricValue(row, metric.key!);
  return v !== null && v > 0 ? v : null;
}

/** up: the second side's value is higher (for survival: it succeeds more often); same: inside the band. */
export type Move = 'up' | 'down' | 'same' | 'inconclusive';

export interface PairJudgement {
  /** Sides compared, from -> to (indices into the run's sides). */
  from: number;
  to: number;
  move: Move;
  rounds: number;
  /** ratio: log(to / from), Hodges-Lehmann, with its 95% interval; rate: the difference in survival share. */
  estimate: number;
  lo: number;
  hi: number;
  p: number;
  /** The look's own significance level (the rule's alpha spent at this look). */
  level: number;
}

/** Two-sided exact sign test: p of `pos` successes among `n` fair coin flips at least as lopsided. */
export function signTestP(pos: number, n: number): number {
  if (n === 0) return 1;
  const k = Math.max(pos, n - pos);
  let tail = 0;
  for (let i = k; i <= n; i++) tail += binom(n, i);
  return Math.min(1, (2 * tail) / 2 ** n);
}
function binom(n: number, k: number): number {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c;
}

/** Survival needs this many rounds with none differing before a pair is `same`: fewer cannot bound a rare failure. */
export const SURVIVAL_SAME_MIN_ROUNDS = 10;

/**
 * One pair at one look: x, y are the two sides' values for the same rounds.
 * ratio: decideAtLook on log(y / x), the suite's own rule. rate: the exact
 * sign test of the rounds where one side succeeded and the other did not, at
 * the look's level; `same` when no round differs after SURVIVAL_SAME_MIN_ROUNDS.
 */
export function judgePair(metric: BisectMetric, x: number[], y: number[], look: number, rule: StoppingRule, from = 0, to = 1): PairJudgement {
  if (metric.kind === 'ratio') {
    const d = x.map((xi, i) => Math.log(y[i] / xi));
    const dec = decideAtLook(d, look, rule);
    const c = dec.change ?? pairedChange(d.slice(0, look), Number((1 - rule.confidence).toFixed(12)));
    const move: Move = dec.verdict === 'faster' ? 'up' : dec.verdict === 'slower' ? 'down' : dec.verdict;
    return { from, to, move, rounds: look, estimate: c.estimate, lo: c.lo, hi: c.hi, p: dec.p, level: dec.level };
  }
  const d = x.slice(0, look).map((xi, i) => y[i] - xi);
  const pos = d.filter((v) => v > 0).length, neg = d.filter((v) => v < 0).length;
  const level = lookLevels(rule)[rule.looks.indexOf(look)];
  const p = signTestP(pos, pos + neg);
  const mean = d.reduce((s, v) => s + v, 0) / look;
  const sd = Math.sqrt(d.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, look - 1));
  const half = (1.96 * sd) / Math.sqrt(look); // normal approximation: a display interval, the decision is the sign test's
  const differs = p < level && Math.abs(mean) * 100 >= rule.noise_pct;
  const move: Move = differs ? (mean > 0 ? 'up' : 'down') : pos + neg === 0 && look >= SURVIVAL_SAME_MIN_ROUNDS ? 'same' : 'inconclusive';
  return { from, to, move, rounds: look, estimate: mean, lo: Math.max(-1, mean - half), hi: Math.min(1, mean + half), p, level };
}

/** What a step makes of its midpoint. */
export type StepClass = 'good' | 'bad' | 'between' | 'undecided';

/**
 * The midpoint from its two judgements: a = range's good end -> midpoint,
 * b = midpoint -> range's bad end, `toward` the way GOOD -> BAD moved.
 * good: a did not move (same, or away from BAD), or b moved while a did not;
 * bad: the mirror image; between: both moved (part of the change on each
 * side: gradual); anything else is undecided.
 */
export function classifyStep(a: Move, b: Move, toward: 'up' | 'down'): StepClass {
  const moved = (m: Move) => m === toward;
  const still = (m: Move) => m === 'same' || (m !== 'inconclusive' && m !== toward);
  if (moved(a) && moved(b)) return 'between';
  const good = still(a) || (moved(b) && !moved(a));
  const bad = still(b) || (moved(a) && !moved(b));
  return good && !bad ? 'good' : bad && !good ? 'bad' : 'undecided';
}

/** Stop a step once its midpoint is classified; stop the confirmation once GOOD -> BAD is decided. */
export const stopWhenClassified = (toward: 'up' | 'down') => (j: PairJudgement[]) => classifyStep(j[0].move, j[1].move, toward) !== 'undecided';
export const stopWhenDecided = (j: PairJudgement[]) => j[0].move !== 'inconclusive';

export interface RoundsStop {
  case: string;
  rounds: number;
  state: 'decided' | 'cap';
  /** One word per judged pair, for the progress line. */
  verdicts: string[];
}

/**
 * Adaptive rounds for a bisection step, in the shape run.ts's executeRun takes
 * (record, stopped, all): per case, at each of the rule's looks (rounds in
 * which every side has a value), every pair is judged; the case stops when
 * `stopWhen` says so, or at the last look.
 */
export class StepRounds {
  private readonly rows = new Map<string, RawRow[][]>();
  private readonly looked = new Map<string, number>();
  private readonly stops = new Map<string, RoundsStop>();
  private readonly last = new Map<string, PairJudgement[]>();

  constructor(
    private readonly rule: StoppingRule, private readonly metric: BisectMetric, private readonly warmup: number,
    private readonly sides: number, private readonly pairs: [number, number][], private readonly stopWhen: (j: PairJudgement[]) => boolean,
  ) {}

  stopped(key: string): boolean { return this.stops.has(key); }
  /** The judgements of the case's last look; null before its first. */
  judgements(key: string): PairJudgement[] | null { return this.last.get(key) ?? null; }

  /** The sides' values of every round each side has a value in, in iteration order. */
  values(key: string): number[][] {
    const bySide = (this.rows.get(key) ?? []).map((rs) => new Map(iterationRows(rs).map((r) => [r.iteration, iterationValue(this.metric, r)])));
    if (bySide.length < this.sides) return Array.from({ length: this.sides }, () => []);
    const rounds = [...bySide[0].keys()].filter((i) => bySide.every((s) => s.get(i) != null)).sort((a, b) => a - b);
    return bySide.map((s) => rounds.map((i) => s.get(i)!));
  }

  record(side: number, row: RawRow): RoundsStop | null {
    const key = caseKey(row);
    if (this.stops.has(key) || row.iteration <= this.warmup) return null;
    const bySide = this.rows.get(key) ?? Array.from({ length: this.sides }, (): RawRow[] => []);
    this.rows.set(key, bySide);
    bySide[side].push(row);
    const v = this.values(key);
    const look = this.rule.looks.find((l) => l === v[0].length);
    if (look === undefined || this.looked.get(key) === look) return null;
    this.looked.set(key, look);
    const j = this.pairs.map(([a, b]) => judgePair(this.metric, v[a], v[b], look, this.rule, a, b));
    this.last.set(key, j);
    const decided = this.stopWhen(j);
    if (!decided && look !== this.rule.looks[this.rule.looks.length - 1]) return null;
    const stop: RoundsStop = { case: key, rounds: look, state: decided ? 'decided' : 'cap', verdicts: j.map((x) => x.move) };
    this.stops.set(key, stop);
    return stop;
  }
}

/** What is known of each commit between GOOD (index 0) and BAD (index n), by index. */
export type CommitState = StepClass | 'skip';

/** The current range: the last good before the first bad. */
export function currentRange(n: number, states: ReadonlyMap<number, CommitState>): { lo: number; hi: number } {
  let hi = n;
  for (const [i, s] of states) if (s === 'bad' && i < hi) hi = i;
  let lo = 0;
  for (const [i, s] of states) if (s === 'good' && i > lo && i < hi) lo = i;
  return { lo, hi };
}

/** The next commit to measure: the untried one nearest the middle of the range (skipped and undecided ones left out); null when none is left. */
export function nextMidpoint(n: number, states: ReadonlyMap<number, CommitState>): number | null {
  if ([...states.values()].includes('between')) return null;
  const { lo, hi } = currentRange(n, states);
  const mid = (lo + hi) / 2;
  const open = Array.from({ length: hi - lo - 1 }, (_, k) => lo + 1 + k).filter((i) => !states.has(i));
  if (open.length === 0) return null;
  // Nearest the middle; of two, the lower (as git bisect rounds down).
  return open.reduce((best, i) => (Math.abs(i - mid) < Math.abs(best - mid) ? i : best));
}

export type Answer =
  | { kind: 'culprit'; index: number; parent: number }
  | { kind: 'range'; lo: number; hi: number; skipped: number[]; undecided: number[] }
  | { kind: 'gradual'; at: number[] };

/** The answer once nextMidpoint has nothing left: one commit, a range no step could split (naming why), or a gradual change. */
export function answer(n: number, states: ReadonlyMap<number, CommitState>): Answer {
  const between = [...states].filter(([, s]) => s === 'between').map(([i]) => i).sort((a, b) => a - b);
  if (between.length) return { kind: 'gradual', at: between };
  const { lo, hi } = currentRange(n, states);
  if (hi === lo + 1) return { kind: 'culprit', index: hi, parent: lo };
  const inside = [...states].filter(([i]) => i > lo && i < hi);
  return {
    kind: 'range', lo, hi,
    skipped: inside.filter(([, s]) => s === 'skip').map(([i]) => i).sort((a, b) => a - b),
    undecided: inside.filter(([, s]) => s === 'undecided').map(([i]) => i).sort((a, b) => a - b),
  };
}

/** The most steps a bisection of n commits should need when every step decides: ceil(log2 n). */
export function expectedSteps(n: number): number {
  return Math.ceil(Math.log2(Math.max(1, n)));
}

/**
 * Of several cases' GOOD -> BAD judgements, the one to bisect on: among those
 * that moved, the largest change (|estimate|); null when none moved.
 */
export function chooseCase(judged: { case: string; judgement: PairJudgement }[]): { case: string; judgement: PairJudgement } | null {
  const moved = judged.filter((c) => c.judgement.move === 'up' || c.judgement.move === 'down');
  if (moved.length === 0) return null;
  return moved.reduce((best, c) => (Math.abs(c.judgement.estimate) > Math.abs(best.judgement.estimate) ? c : best));
}

/** "-46.8% [-49.0%, -44.1%]" for a ratio (log scale), "+100 points [...]" of survival share for a rate. */
export function formatChange(metric: BisectMetric, j: Pick<PairJudgement, 'estimate' | 'lo' | 'hi'>): string {
  const f = metric.kind === 'ratio'
    ? (x: number) => (Number.isFinite(x) ? `${(Math.exp(x) - 1) * 100 >= 0 ? '+' : ''}${((Math.exp(x) - 1) * 100).toFixed(1)}%` : x > 0 ? '+inf' : '-inf')
    : (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(0)} pts`;
  return `${f(j.estimate)} [${f(j.lo)}, ${f(j.hi)}]`;
}

/** A move in the metric's own words: "worse (slower)" etc. */
export function moveWords(metric: BisectMetric, move: Move): string {
  if (move === 'same' || move === 'inconclusive') return move;
  const worse = (move === 'up') === (metric.worse === 'higher');
  return worse ? 'worse' : 'better';
}
