// A seeded synthetic run of adaptive rounds, through the suite's own pieces:
// rows made up per upload (throughput, duration and the other metrics, with
// failures, concurrency, drift and AR(1) noise), fed to AdaptiveRounds as
// lib/run.ts feeds it (skipping what it stopped), each shard's sides merged
// by mergeShards, and every later side compared with the first by
// compareRuns, as run-tests and merge-runs do. For the family-wise tests.
import { AdaptiveRounds } from '../lib/adaptive.ts';
import { compareRuns, type Comparison, type RunInput } from '../lib/compare.ts';
import { seededRandom } from '../lib/interleave.ts';
import { mergeShards, type ShardRun } from '../lib/merge.ts';
import type { RawRow } from '../lib/results.ts';
import type { RunRecord } from '../lib/run-record.ts';
import { familyOf } from '../lib/family.ts';
import { stoppingRule } from '../lib/sequential.ts';
import { caseKey } from '../lib/cases.ts';
import { row } from './raw-row.mts';

export interface SimCase { bytes: number; mem: number; conc: number }

export interface SimSpec {
  cases: SimCase[];
  /** Servers: the first is the baseline. */
  sides: number;
  /** Log change of a side's throughput in a case (0 for the baseline). */
  effect?: (caseIndex: number, side: number) => number;
  /** SD of the paired log ratio of throughput (each side's own noise has sd / sqrt 2). */
  sd: number;
  /** Lag-1 autocorrelation of each side's noise from round to round, so of the paired ratios. */
  rho?: number;
  /** SD of one upload's log throughput around its iteration's, for concurrency above 1. */
  uploadSd?: number;
  /** Chance that an upload fails. */
  failP?: number;
  shards?: number;
  maxRounds?: number;
  noisePct?: number;
}

export interface SimResult {
  comparisons: Comparison[];
  /** The largest exit code of the comparisons. */
  exitCode: number;
  /** What the rule recorded (each shard's, merged). */
  stops: NonNullable<RunRecord['ab']>['stops'];
}

const WARMUP = 1;

export function simulateRun(spec: SimSpec, seed: number): SimResult {
  const random = seededRandom(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const maxRounds = spec.maxRounds ?? 48;
  const noisePct = spec.noisePct ?? 3;
  const shardsN = spec.shards ?? 1;
  const keyOf = (c: SimCase) => caseKey({ file_size_bytes: c.bytes, memory_limit_mb: c.mem, concurrency: c.conc });
  // One family for the whole matrix, recorded alike by every shard (lib/family.ts; run-tests: family(matrix, servers)).
  const rule = stoppingRule({ alpha: 0.05, noisePct, family: familyOf(spec.cases.map(keyOf), spec.sides), maxRounds });
  // Whole (size, memory) cases to shards in turn, as lib/shard.ts keeps a case's concurrencies together.
  const ids = [...new Set(spec.cases.map((c) => `${c.bytes}@${c.mem}`))];
  const shardOf = (c: SimCase) => ids.indexOf(`${c.bytes}@${c.mem}`) % shardsN;
  const matrix = { iterations: WARMUP + maxRounds, warmup_iterations: WARMUP, sizes: [], memory_limits_mb: [], concurrency: [...new Set(spec.cases.map((c) => c.conc))] };
  const shardRuns: ShardRun[] = [];
  for (let s = 0; s < shardsN; s++) {
    const mine = spec.cases.map((c, i) => ({ c, i })).filter(({ c }) => shardOf(c) === s);
    const rounds = new AdaptiveRounds(rule, spec.sides, WARMUP);
    const rows: RawRow[][] = Array.from({ length: spec.sides }, () => []);
    for (const { c, i: ci } of mine) {
      const ar = Array.from({ length: spec.sides }, () => normal());
      const key = keyOf(c);
      for (let it = 1; it <= WARMUP + maxRounds; it++) {
        const drift = 0.1 * Math.sin(it / 5 + ci);
        const rho = spec.rho ?? 0;
        for (let sd = 0; sd < spec.sides; sd++) ar[sd] = rho * ar[sd] + Math.sqrt(1 - rho * rho) * normal();
        const order = Array.from({ length: spec.sides }, (_, k) => k).sort(() => random() - 0.5);
        for (const side of order) {
          if (rounds.skip(side, key)) continue;
          const level = Math.log(100) + drift + (spec.effect?.(ci, side) ?? 0) + (spec.sd / Math.SQRT2) * ar[side];
          const its: RawRow[] = [];
          for (let u = 0; u < c.conc; u++) {
            const failed = random() < (spec.failP ?? 0);
            const thr = Math.exp(level + (c.conc > 1 ? (spec.uploadSd ?? 0) * normal() : 0));
            const mib = c.bytes / 2 ** 20;
            const duration = mib / thr;
            const m = (x: number, cv: number) => x * Math.exp(cv * normal());
            its.push(row({
              file_size: `${c.bytes}B`, file_size_bytes: c.bytes, memory_limit: `${c.mem}MB`, memory_limit_mb: c.mem, concurrency: c.conc,
              iteration: it, exit_reason: failed ? 'timeout' : 'success', throughput_mib_s: failed ? null : thr, duration_seconds: duration,
              processing_seconds: m(duration * 0.2, 0.1), peak_memory_bytes: m(80e6, 0.05), server_peak_rss_bytes: m(50e6, 0.05),
              server_cpu_user_seconds: m(0.5, 0.1), server_cpu_system_seconds: m(0.2, 0.1), server_write_bytes: m(2 * c.bytes, 0.01),
              data_dir_bytes: m(c.bytes, 0.01), download_mib_s: m(500, 0.1), download_ttfb_seconds: m(0.01, 0.1),
            }));
          }
          rows[side].push(...its);
          rounds.record(side, its);
        }
      }
    }
    const stops = rounds.all();
    shardRuns.push({
      given: `shard${s + 1}`,
      sides: rows.map((r, side) => ({
        folder: `side${side}`, dir: `shard${s + 1}/side${side}`, rows: r, failuresLog: '', canary: [], samples: [],
        config: {
          suite_version: 'sim', suite_git: null, provider: 'local', matrix, host: {}, server: { kind: 'standin', path: null, git: null }, finished: true,
          shard: { index: s + 1, total: shardsN, source: 'sim', rule: 'sim', cases: ids.filter((_, k) => k % shardsN === s), planned_upload_bytes: 0, planned_boots: 0 },
          ab: { refs: rows.map((_, k) => `side${k}`), this_ref: side, seed, parent: `shard${s + 1}`, order: '', stopping_rule: rule, stops },
        } as unknown as RunRecord,
      })),
    });
  }
  // One shard is a plain run; several are merged as merge-runs does.
  const sides = shardsN === 1 ? shardRuns[0].sides : mergeShards(shardRuns, { allowMissing: false }).sides;
  const inputs: RunInput[] = sides.map((s) => ({ name: s.folder, rows: s.rows, config: { ...s.config, ab: { ...s.config.ab!, parent: 'merged' } } }));
  const comparisons = inputs.slice(1).map((cand) => compareRuns(inputs[0], cand, { alpha: 0.05, noisePct }));
  return { comparisons, exitCode: Math.max(...comparisons.map((c) => c.exitCode)), stops: inputs[0].config!.ab!.stops };
}

/** A matrix of `n` cases: sizes x memory limits, each at the given concurrencies. */
export function simCases(sizes: number, mems: number, concs: number[] = [1]): SimCase[] {
  const out: SimCase[] = [];
  for (let m = 0; m < mems; m++) for (let s = 0; s < sizes; s++) for (const conc of concs) out.push({ bytes: (s + 1) * 2 ** 20, mem: 256 * (m + 1), conc });
  return out;
}
