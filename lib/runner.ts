// The matrix loop: one environment per memory limit (in case order), every
// iteration's outcome handed on as soon as it exists, a failed environment
// recorded as vm_failed rows, teardown always. It takes the functions that do
// the work, so order, stopping and failure handling are testable without a server.
import type { Case } from './matrix.ts';
import type { Environment } from './provider.ts';
import type { IterationOutcome } from './iteration.ts';

export interface RunnerHooks {
  up(memoryMb: number): Promise<Environment>;
  runCase(env: Environment, c: Case): Promise<IterationOutcome>;
  /** Called with every outcome at once (the caller appends it to raw.csv). */
  record(outcome: IterationOutcome, c: Case): void;
  /** Rows for the cases of a memory limit whose environment could not be brought up. */
  envFailed(memoryMb: number, error: Error, cases: Case[]): void;
  stopped(): boolean;
}

/** Groups cases by memory limit, keeping their order. */
export function byMemory(cases: Case[]): [number, Case[]][] {
  const groups = new Map<number, Case[]>();
  for (const c of cases) groups.set(c.memoryMb, [...(groups.get(c.memoryMb) ?? []), c]);
  return [...groups.entries()];
}

export async function runMatrix(cases: Case[], hooks: RunnerHooks): Promise<void> {
  for (const [memoryMb, group] of byMemory(cases)) {
    if (hooks.stopped()) return;
    let env: Environment;
    try {
      env = await hooks.up(memoryMb);
    } catch (e) {
      if (hooks.stopped()) return;
      hooks.envFailed(memoryMb, e as Error, group);
      continue;
    }
    try {
      for (const c of group) {
        if (hooks.stopped()) return;
        hooks.record(await hooks.runCase(env, c), c);
      }
    } finally {
      await env.down();
    }
  }
}
