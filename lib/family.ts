// The family of a run: every comparison its verdicts are made on, defined once
// for the whole matrix before any shard starts, so that the family-wise promise
// (over all cases, servers and looks, the chance of any false `faster` or
// `slower` stays below alpha) holds however the run is split. A comparison is
// one case (caseKey: size x memory limit x concurrency) x one later server
// against the first. Every shard records the same family in its stopping rule
// (lib/sequential.ts), and merge-runs refuses shards whose rules differ.
//
//   const f = family(matrix, 3)           // { cases: ['1048576@256', '1048576@256x2', ...], servers: 3, comparisons: 2 x cases }
//   const level = comparisonAlpha(f, 0.05) // each comparison's share: alpha / comparisons
//
// Pure.
import { caseKey } from './cases.ts';
import { expandCases, type Matrix } from './matrix.ts';

export interface Family {
  /** caseKey of every case of the whole matrix (all shards), in matrix order. */
  cases: string[];
  /** Servers of the run: each later one is compared with the first. */
  servers: number;
  /** cases x (servers - 1): the comparisons alpha is shared among. */
  comparisons: number;
}

/** The family of a run of `servers` servers over the whole matrix `m` (never one shard's part of it). */
export function family(m: Matrix, servers: number): Family {
  const keys = [...new Set(expandCases(m).map((c) => caseKey({ file_size_bytes: c.size.bytes, memory_limit_mb: c.memoryMb, concurrency: c.concurrency ?? 1 })))];
  return familyOf(keys, servers);
}

/** The family of the given case keys and servers. */
export function familyOf(cases: string[], servers: number): Family {
  if (cases.length === 0) throw new Error('a family needs at least one case');
  if (!(Number.isInteger(servers) && servers >= 2)) throw new Error(`a family compares two or more servers, got ${servers}`);
  return { cases, servers, comparisons: cases.length * (servers - 1) };
}

/** Each comparison's share of the family-wise alpha (Bonferroni: comparisons stop at different looks, so no step-down). */
export function comparisonAlpha(f: Family, alpha: number): number {
  return alpha / f.comparisons;
}
