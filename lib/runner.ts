// The matrix loop: one environment per memory limit, every
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

export async function runMatrix(jobs: Job<Case>[], hooks: RunnerHooks): Promise<void> {
  // Jobs of several limits may alternate (adaptive rounds on cgroups): each limit keeps its environment
  // until its last job is done, so jobs grouped by limit still have one environment at a time.
  const lastJob = new Map<number, number>();
  jobs.forEach((j, i) => lastJob.set(j.case.memoryMb, i));
  const envs = new Map<number, { env: Environment | null; replacements: number }>();
  const failed = new Set<number>(); // limits whose remaining jobs were recorded as vm_failed
  const rest = (memoryMb: number, from: number) => jobs.slice(from).filter((j) => j.case.memoryMb === memoryMb && !hooks.skip?.(j));
  const runJob = async (i: number): Promise<void> => {
    const job = jobs[i];
    const memoryMb = job.case.memoryMb;
    const limit = envs.get(memoryMb) ?? { env: null, replacements: 0 };
    envs.set(memoryMb, limit);
    if (!limit.env) {
      try {
        limit.env = await hooks.up(memoryMb, limit.replacements);
      } catch (e) {
        if (!hooks.stopped()) hooks.envFailed(memoryMb, e as Error, rest(memoryMb, i));
        failed.add(memoryMb);
        return;
      }
    }
    const outcome = await hooks.runCase(limit.env, job);
    hooks.record(outcome, job);
    if (outcome.row.exit_reason === 'success' || hooks.stopped() || await limit.env.environmentAlive()) return;
    await limit.env.down();
    limit.env = null;
    if (limit.replacements === MAX_REPLACEMENTS) {
      hooks.envFailed(memoryMb, new Error(`the environment died ${MAX_REPLACEMENTS + 1} times at ${memoryMb} MB`), rest(memoryMb, i + 1));
      failed.add(memoryMb);
      return;
    }
    limit.replacements++;
  };
  try {
    for (let i = 0; i < jobs.length; i++) {
      if (hooks.stopped()) return;
      const memoryMb = jobs[i].case.memoryMb;
      if (!failed.has(memoryMb) && !hooks.skip?.(jobs[i])) await runJob(i);
      if (lastJob.get(memoryMb) === i) {
        await envs.get(memoryMb)?.env?.down();
        envs.delete(memoryMb);
      }
    }
  } finally {
    for (const limit of envs.values()) await limit.env?.down();
  }
}
