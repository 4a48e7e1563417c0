// The matrix loop: one environment per memory limit (in case order), every
// iteration's outcome handed on as soon as it exists, a failed environment
// recorded as vm_failed rows, teardown always. An environment that dies
// mid-limit (a VM killed or crashed) is replaced by a fresh one, at most
// MAX_REPLACEMENTS times per limit, so one bad moment does not cost the rest
// of that limit's iterations. It takes the functions that do the work, so
// order, stopping and failure handling are testable without a server.
import type { Job } from './stats/interleave.ts';
import type { Case } from './matrix.ts';
import type { Environment } from './providers/provider.ts';
import type { IterationOutcome } from './iteration.ts';

export const MAX_REPLACEMENTS = 2;

export interface RunnerHooks {
  /** `replacement`: 0 for a limit's first environment, n for the one that replaces the n-th dead one. */
  up(memoryMb: number, replacement: number): Promise<Environment>;
  runCase(env: Environment, job: Job<Case>): Promise<IterationOutcome>;
  /** Called with every outcome at once (the caller appends it to raw.csv). */
  record(outcome: IterationOutcome, job: Job<Case>): void;
  /** Rows for the jobs of a memory limit whose environment could not be brought up. */
  envFailed(memoryMb: number, error: Error, jobs: Job<Case>[]): void;
  stopped(): boolean;
  /** Whether to leave a planned job out (adaptive rounds: its case is already decided). */
  skip?(job: Job<Case>): boolean;
}

/** Groups jobs by their case's memory limit, keeping their order. */
export function byMemory(jobs: Job<Case>[]): [number, Job<Case>[]][] {
  const groups = new Map<number, Job<Case>[]>();
  for (const j of jobs) groups.set(j.case.memoryMb, [...(groups.get(j.case.memoryMb) ?? []), j]);
  return [...groups.entries()];
}

export async function runMatrix(jobs: Job<Case>[], hooks: RunnerHooks): Promise<void> {
  for (const [memoryMb, group] of byMemory(jobs)) {
    if (hooks.stopped()) return;
    let env: Environment | null = null;
    let replacements = 0;
    try {
      for (let i = 0; i < group.length; i++) {
        if (hooks.stopped()) return;
        if (hooks.skip?.(group[i])) continue;
        if (!env) {
          try {
            env = await hooks.up(memoryMb, replacements);
          } catch (e) {
            if (!hooks.stopped()) hooks.envFailed(memoryMb, e as Error, group.slice(i).filter((j) => !hooks.skip?.(j)));
            break;
          }
        }
        const outcome = await hooks.runCase(env, group[i]);
        hooks.record(outcome, group[i]);
        if (outcome.row.exit_reason === 'success' || hooks.stopped() || await env.environmentAlive()) continue;
        await env.down();
        env = null;
        if (replacements === MAX_REPLACEMENTS) {
          hooks.envFailed(memoryMb, new Error(`the environment died ${MAX_REPLACEMENTS + 1} times at ${memoryMb} MB`), group.slice(i + 1).filter((j) => !hooks.skip?.(j)));
          break;
        }
        replacements++;
      }
    } finally {
      await env?.down();
    }
  }
}
