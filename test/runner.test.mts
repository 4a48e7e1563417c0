// The matrix loop with environments that can die: order, replacement of a dead
// environment within its memory limit, the cap on replacements, an environment
// that cannot come up, and teardown of every environment it brought up.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IterationOutcome } from '../lib/iteration.ts';
import type { Case } from '../lib/matrix.ts';
import type { Environment } from '../lib/providers/provider.ts';
import type { RawRow } from '../lib/results.ts';
import { MAX_REPLACEMENTS, runMatrix, type RunnerHooks } from '../lib/runner.ts';

const cases = (limits: number[], iterations: number): Case[] =>
  limits.flatMap((memoryMb) => Array.from({ length: iterations }, (_, i) => ({ memoryMb, size: { label: '1MiB', bytes: 2 ** 20 }, iteration: i + 1 })));

/**
 * A run against fake environments. `dies` says, per iteration started (counting from 1 across the run),
 * whether the environment dies during it; `upFails` which up() calls (from 1) throw; `serverFails` which
 * iterations fail with the environment alive (a server crash).
 */
async function simulate(todo: Case[], dies: Set<number>, upFails = new Set<number>(), serverFails = new Set<number>()) {
  const log: string[] = [];
  const downs: string[] = []; // `#n after k`: environment n torn down when the log had k entries
  let ups = 0;
  let started = 0;
  const live = new Set<number>();
  const hooks: RunnerHooks = {
    async up(memoryMb, replacement) {
      if (replacement > 0) log.push(`replace ${memoryMb} ${replacement}`);
      const n = ++ups;
      if (upFails.has(n)) throw new Error(`boot ${n} failed`);
      let alive = true;
      live.add(n);
      log.push(`up ${memoryMb} #${n}`);
      const env = {
        memoryMb, facts: { n },
        environmentAlive: async () => alive,
        down: async () => { if (live.delete(n)) downs.push(`#${n} after ${log.length}`); },
        kill: () => { alive = false; },
      };
      return env as unknown as Environment;
    },
    async runCase(env, { case: c }) {
      const n = ++started;
      const dead = dies.has(n);
      if (dead) (env as unknown as { kill(): void }).kill();
      const reason = dead ? 'not_ready' : serverFails.has(n) ? 'process_died' : 'success';
      const row = { memory_limit_mb: c.memoryMb, iteration: c.iteration, exit_reason: reason, error: '' } as RawRow;
      return { row, failure: null } satisfies IterationOutcome;
    },
    record(o, { case: c }) { log.push(`${c.memoryMb}#${c.iteration} ${o.row.exit_reason}`); },
    envFailed(memoryMb, error, rest) { for (const { case: c } of rest) log.push(`${memoryMb}#${c.iteration} vm_failed (${error.message})`); },
    stopped: () => false,
  };
  await runMatrix(todo.map((c) => ({ case: c, side: 0 })), hooks);
  return { log, live, downs };
}

test('one environment per memory limit, torn down after its cases', { timeout: 120_000 }, async () => {
  const { log, live } = await simulate(cases([512, 256], 2), new Set());
  assert.deepEqual(log, ['up 512 #1', '512#1 success', '512#2 success', 'up 256 #2', '256#1 success', '256#2 success']);
  assert.equal(live.size, 0);
});

test('an environment that dies mid-limit is replaced and the limit goes on', { timeout: 120_000 }, async () => {
  const { log, live } = await simulate(cases([512, 256], 3), new Set([2]));
  assert.deepEqual(log, [
    'up 512 #1', '512#1 success', '512#2 not_ready', 'replace 512 1', 'up 512 #2', '512#3 success',
    'up 256 #3', '256#1 success', '256#2 success', '256#3 success',
  ]);
  assert.equal(live.size, 0, 'the dead one and its replacement were both torn down');
});

test(`after ${MAX_REPLACEMENTS} replacements the rest of the limit is vm_failed, the next limit runs`, { timeout: 120_000 }, async () => {
  const { log, live } = await simulate(cases([512, 256], 5), new Set([1, 2, 3]));
  assert.deepEqual(log, [
    'up 512 #1', '512#1 not_ready', 'replace 512 1', 'up 512 #2', '512#2 not_ready', 'replace 512 2', 'up 512 #3', '512#3 not_ready',
    '512#4 vm_failed (the environment died 3 times at 512 MB)', '512#5 vm_failed (the environment died 3 times at 512 MB)',
    'up 256 #4', '256#1 success', '256#2 success', '256#3 success', '256#4 success', '256#5 success',
  ]);
  assert.equal(live.size, 0);
});

test('a replacement that cannot come up: the rest of that limit is vm_failed', { timeout: 120_000 }, async () => {
  const { log } = await simulate(cases([512], 3), new Set([1]), new Set([2]));
  assert.deepEqual(log, ['up 512 #1', '512#1 not_ready', 'replace 512 1', '512#2 vm_failed (boot 2 failed)', '512#3 vm_failed (boot 2 failed)']);
});

test('a failure with the environment still alive is only a row', { timeout: 120_000 }, async () => {
  const { log } = await simulate(cases([512], 3), new Set(), new Set(), new Set([1, 2]));
  assert.deepEqual(log, ['up 512 #1', '512#1 process_died', '512#2 process_died', '512#3 success']);
});

test('jobs of several limits in turn: each limit keeps its own environment until its last job', { timeout: 120_000 }, async () => {
  const [a1, a2, a3, b1, b2, b3] = cases([512, 256], 3);
  const { log, live, downs } = await simulate([a1, b1, a2, b2, a3, b3], new Set([3]));
  assert.deepEqual(log, [
    'up 512 #1', '512#1 success', 'up 256 #2', '256#1 success',
    '512#2 not_ready', '256#2 success', 'replace 512 1', 'up 512 #3', '512#3 success', '256#3 success',
  ], 'the dead 512 MB environment is replaced when its limit runs next; 256 MB goes on in its own');
  assert.deepEqual(downs, ['#1 after 5', '#3 after 9', '#2 after 10'], 'each torn down after its limit\'s last job, the dead one at once');
  assert.equal(live.size, 0);
});

test('a limit whose environment cannot come up is vm_failed; the other limit in turn with it runs', { timeout: 120_000 }, async () => {
  const [a1, a2, b1, b2] = cases([512, 256], 2);
  const { log, live } = await simulate([a1, b1, a2, b2], new Set(), new Set([1]));
  assert.deepEqual(log, ['512#1 vm_failed (boot 1 failed)', '512#2 vm_failed (boot 1 failed)', 'up 256 #2', '256#1 success', '256#2 success']);
  assert.equal(live.size, 0);
});
