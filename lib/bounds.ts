// Every bound on a run's settings, defined once: matrix.yaml (lib/matrix.ts),
// config.json (lib/run-record.ts) and run-tests' flags (lib/options.ts) all
// check a value against the same Bound, so a run's own record always reads back.
//   parseWhole(ITERATIONS, '1001')  -> throws "at most 1000 iterations per case"
//   wholeIn(VM_CPUS)                -> a zod schema: "must be a whole number from 1 to 255"
//
// The schema library is zod 4 (not valibot): both record formats are nested
// objects of optional fields with defaults, and zod's objects, `.default()`,
// per-schema `error` messages and issue paths (`matrix.sizes[0].bytes`, mapped
// to a YAML line in matrix.ts) say that declaratively; its output types are
// checked against RunRecord and Matrix. valibot's smaller bundle buys nothing
// in a CLI, and zod is the more widely kept of the two.
//
// Pure: no file system, no processes.
import { z } from 'zod';

/** A whole-number setting: `min`..`max`, and what a value above `max` is told. */
export interface Bound { min: number; max: number; over: string }

/** A test file is written to disk and uploaded whole: beyond 1 TiB is a typo (999999TiB reached the disk check and failed there with exit 1). */
export const SIZE_BYTES: Bound = { min: 1, max: 1024 ** 4, over: 'at most 1 TiB' };
/** MB as QEMU -m reads it (2^20 bytes). 1 TiB: more memory than any host the suite runs on; a larger limit is a typo, and was run unenforced. */
export const MEMORY_MB: Bound = { min: 1, max: 1024 * 1024, over: 'at most 1048576 MB (1 TiB)' };
/**
 * Far above any real run (1000 iterations of a 1 MiB case take an hour), far below what exhausts the
 * suite's memory: 999999999 grew the heap past 4 GB expanding cases, then V8 aborted (exit 134).
 */
export const ITERATIONS: Bound = { min: 1, max: 1000, over: 'at most 1000 iterations per case' };
/** Leading iterations left out of medians; fewer than the iterations (checked with them), so at most one less than the most. */
export const WARMUP_ITERATIONS: Bound = { min: 0, max: ITERATIONS.max - 1, over: `must be less than iterations (at most ${ITERATIONS.max - 1})` };
/** More uploads at once than this is a typo, not a measurement: each holds the file's memory and disk share. */
export const CONCURRENCY: Bound = { min: 1, max: 64, over: 'at most 64 uploads at once' };
// Node's timers hold at most 2^31-1 ms (24.8 days; beyond, they fire at once), and a VM under
// TCG multiplies every timeout by 4 (TCG_TIMEOUT_FACTOR in qemu.ts): 536870 s is the true bound.
export const TIMEOUT_SECONDS: Bound = { min: 1, max: 500_000, over: 'must be at most 500000 seconds' };
/** QEMU's default x86 machine (pc-i440fx, which qemu.ts boots) refuses -smp 256: "The max CPUs supported by machine 'pc-i440fx-7.2' is 255". */
export const VM_CPUS: Bound = { min: 1, max: 255, over: 'at most 255 vCPUs (the most QEMU\'s pc machine takes)' };

/** Every bound, by the name a message or test uses for it. */
export const BOUNDS = {
  size_bytes: SIZE_BYTES, memory_mb: MEMORY_MB, iterations: ITERATIONS, warmup_iterations: WARMUP_ITERATIONS,
  concurrency: CONCURRENCY, timeout_seconds: TIMEOUT_SECONDS, vm_cpus: VM_CPUS,
} as const;

/** `text` (a flag's value, a matrix.yaml scalar) as a whole number within `b`; throws the reason. */
export function parseWhole(b: Bound, text: string | number): number {
  const s = String(text).trim();
  if (!/^\d+$/.test(s) || Number(s) < b.min) throw new Error(b.min > 0 ? 'not a positive whole number' : 'not a whole number');
  if (!Number.isSafeInteger(Number(s))) throw new Error(`too large (at most ${Number.MAX_SAFE_INTEGER})`);
  if (Number(s) > b.max) throw new Error(b.over);
  return Number(s);
}

/** A JSON number within `b` (config.json): "must be a whole number from MIN to MAX". */
export function wholeIn(b: Pick<Bound, 'min' | 'max'>) {
  const what = b.max === Number.MAX_SAFE_INTEGER ? `must be a whole number of at least ${b.min}` : `must be a whole number from ${b.min} to ${b.max}`;
  return z.number({ error: what }).refine((n) => Number.isSafeInteger(n) && n >= b.min && n <= b.max, { error: what });
}

/** A JSON whole number of at least `min`, with no bound above (counts, bytes of a host). */
export const wholeFrom = (min: number) => wholeIn({ min, max: Number.MAX_SAFE_INTEGER });

/**
 * A matrix.yaml scalar read by `parse` (e.g. "100MiB", 256, "256MB"): its message is the issue's
 * when it throws; a list or mapping where one value belongs is "must be a single value".
 */
export function scalarBy<T>(parse: (text: string) => T) {
  return z.union([z.string(), z.number(), z.boolean(), z.null()], { error: 'must be a single value' })
    .transform((v, ctx) => {
      try { return parse(String(v)); } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message, input: v });
        return z.NEVER;
      }
    });
}
