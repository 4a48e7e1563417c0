// config.json, the run record: one type, built once by the run, written,
// and read back through one validating loader by resume, report, load-run and
// compare. Older files (fields added since, or missing) still load: what they
// lack gets a neutral default, and what they have is checked like matrix.yaml.
//
//   const record = newRunRecord({ ... })             // the run, before its first case
//   const again = parseRunRecord(JSON.parse(text), 'results/x/config.json')
//   const m = matrixFromRecord(again, 'results/x/config.json')   // what --resume runs
//
// Pure: no file system here (lib/load-run.ts reads the file).
import { InputError } from './errors.ts';
import { judgmentRecord, type JudgmentRule } from './stats/judgment.ts';
import { DEFAULT_NOISE_CUTS, parseNoiseCuts, type NoiseCut } from './noise-cuts.ts';
import type { PlanRecord } from './stats/plan.ts';
import type { PooledRule } from './stats/pooled.ts';
import type { CaseStop } from './stats/adaptive.ts';
import type { StoppingRule } from './stats/sequential.ts';
import type { ShardRecord } from './shard.ts';
import { z } from 'zod';
import { CONCURRENCY, ITERATIONS, MEMORY_MB, SIZE_BYTES, TIMEOUT_SECONDS, VM_CPUS, WARMUP_ITERATIONS, wholeFrom, wholeIn } from './bounds.ts';
import { DEFAULT_TIMEOUTS, defaultWarmup, PROVIDERS, type Matrix, type ProviderName } from './matrix.ts';

/** The one schema number config.json carries; a file with another is refused. */
export const CONFIG_SCHEMA = 1;

export interface GitRecord { commit: string; branch: string; dirty: boolean }

export interface BuildRecord {
  ref: string;
  command: string[];
  go_version: string | null;
  binary_path: string;
  /** The tree the binary was built from, kept beside it: the server's working directory. */
  tree?: string;
  build_seconds: number;
  cached: boolean;
}

export interface ServerRecord {
  kind: 'standin' | 'binary' | 'source';
  /** The binary (binary) or the checkout (source); null for the stand-in. */
  path: string | null;
  git: GitRecord | null;
  /** The stand-in's fault knobs (STANDIN_*) the run started with; a resume runs with the same. */
  standin_env?: Record<string, string>;
  build?: BuildRecord;
  /** A prebuilt binary's working directory (server.workdir). */
  workdir?: string | null;
}

export interface MatrixRecord {
  sizes: { label: string; bytes: number }[];
  memory_limits_mb: number[];
  iterations: number;
  warmup_iterations: number;
  upload_timeout_seconds: number;
  readiness_timeout_seconds: number;
  vm_cpus: number;
  vm_box: string | null;
  /** Uploads at once, one case per entry; absent in records from before it existed: [1]. */
  concurrency: number[];
  /** matrix.yaml's judgment rules (tolerances, exclusions); absent when it has none. */
  judgment?: JudgmentRule[];
  /** What was done before each measured upload to cut noise (lib/noise-cuts.ts); absent in older records: none. */
  noise_cuts?: NoiseCut[];
}

/** One side of an interleaved run of several refs. */
export interface AbRecord {
  refs: string[];
  this_ref: number;
  /** null in a folder merged from shards, each of which drew its own (merge.shards has them). */
  seed: number | null;
  parent: string;
  order: string;
  /** Set when rounds were adaptive: the group-sequential rule cases stopped by (lib/stats/sequential.ts), so a re-read run is judged the same way. */
  stopping_rule?: StoppingRule;
  /** Adaptive rounds: each case that stopped before its planned rounds ran out, when and why. */
  stops?: CaseStop[];
  /** Set when the matrix-level same was on (lib/stats/pooled.ts): the rule the pool let cases stop by. */
  pooled_rule?: PooledRule;
}

/** The host's fingerprint (lib/providers/host.ts); machine, hypervisor and ci are absent from records of older suites. */
export interface HostRecord {
  hostname: string;
  cpu_model: string;
  cores: number;
  kernel: string;
  memory_bytes: number;
  machine?: string | null;
  hypervisor?: boolean | null;
  ci?: Record<string, string>;
}

/** What a resume adds to `resumes`: when, with what command, and the server and suite it ran. */
export interface ResumeRecord {
  started_at: string;
  command: string[];
  suite_version: string;
  suite_git: GitRecord | null;
  server: ServerRecord;
  host: HostRecord;
  /** Rounds only some sides had completed when the run was stopped: dropped from all, run again (lib/resume.ts). */
  dropped_rounds?: { case: string; iteration: number; sides: string[] }[];
}

/** A memory-floor run (--memory-floor, lib/stats/floor.ts): its search settings, the servers, and each search's time so far. */
export interface FloorRecord {
  bottom_mb: number;
  top_mb: number;
  tries: number;
  /** Every server of the run, as given (a ref or a binary), and which one this folder holds. */
  servers: string[];
  this_server: number;
  /** The folder holding one folder per server (floor.md there); null for one server. */
  parent: string | null;
  /** Wall time spent on each search so far (resumes add to it). */
  searches: { file_size_bytes: number; concurrency: number; seconds: number }[];
}

export interface RunRecord {
  suite_version: string;
  /** The suite's own checkout, as opposed to the server's (server.git). */
  suite_git: GitRecord | null;
  schema: typeof CONFIG_SCHEMA;
  command: string[];
  matrix_file: string;
  started_at: string;
  ended_at: string | null;
  finished: boolean;
  stop_reason: string | null;
  provider: ProviderName;
  /** Per memory limit (MB, as a string key): what the environment was, e.g. { limitEnforced: true, mechanism: 'cgroup v1' }. */
  provider_facts: Record<string, Record<string, unknown>>;
  server: ServerRecord;
  ab?: AbRecord;
  matrix: MatrixRecord;
  host: HostRecord;
  resumes?: ResumeRecord[];
  /** Set by --shard k/N: which cases this machine ran, and by what rule. */
  shard?: ShardRecord;
  /** Set on a folder made by merge-runs: its shards, who ran what where (written for the reader, not read back). */
  merge?: Record<string, unknown>;
  /** The plan printed before the run (lib/stats/plan.ts): its time estimate, to compare with ended_at - started_at. */
  plan?: PlanRecord;
  /** Set by --memory-floor. */
  floor?: FloorRecord;
}

export function matrixRecord(m: Matrix, vmBox: string | null): MatrixRecord {
  return {
    sizes: m.sizes.map((s) => ({ label: s.label, bytes: s.bytes })),
    memory_limits_mb: [...m.memoryLimitsMb],
    iterations: m.iterations,
    warmup_iterations: m.warmupIterations,
    upload_timeout_seconds: m.uploadTimeoutSeconds,
    readiness_timeout_seconds: m.readinessTimeoutSeconds,
    vm_cpus: m.vmCpus,
    vm_box: vmBox,
    concurrency: [...m.concurrency],
    ...(m.judgment?.length ? { judgment: m.judgment } : {}),
    noise_cuts: [...(m.noiseCuts ?? DEFAULT_NOISE_CUTS)],
  };
}

/** The record of a run about to start: not finished, no facts yet. */
export function newRunRecord(r: Omit<RunRecord, 'schema' | 'ended_at' | 'finished' | 'stop_reason' | 'provider_facts'>): RunRecord {
  return { ...r, schema: CONFIG_SCHEMA, ended_at: null, finished: false, stop_reason: null, provider_facts: {} };
}

/**
 * After newRunRecord (opened), a run changes its record only through these transitions (and
 * lib/resume.ts's mergeResumedRecord: resumed). Each returns a new record; the run applies one to
 * every side's record at once (lib/run.ts updateRecords).
 */
export const transitions = {
  /** An environment came up for a memory limit: what it was (limit enforced? which mechanism?). */
  environmentUp: (r: RunRecord, memoryMb: number, facts: Record<string, unknown>): RunRecord =>
    ({ ...r, provider_facts: { ...r.provider_facts, [String(memoryMb)]: facts } }),
  /** Adaptive rounds stopped a case: every stop so far. */
  stopRecorded: (r: RunRecord, stops: CaseStop[]): RunRecord => (r.ab ? { ...r, ab: { ...r.ab, stops } } : r),
  /** Every job ran: nothing was cut short. */
  finished: (r: RunRecord): RunRecord => ({ ...r, finished: true }),
  /** The run stopped before its end: a signal, a server that never started, a rejected secret, a suite error. */
  interrupted: (r: RunRecord, reason: string): RunRecord => ({ ...r, stop_reason: reason }),
  /** The folder is closed, however the run ended. */
  closed: (r: RunRecord, at: string): RunRecord => ({ ...r, ended_at: at }),
};

/** The matrix a run was started with (flags and matrix.yaml of today play no part): what --resume runs. */
export function matrixFromRecord(r: RunRecord, where: string): Matrix {
  if (r.matrix.sizes.length === 0 || r.matrix.memory_limits_mb.length === 0) {
    throw new InputError(`${where}: no usable "matrix" (sizes, memory_limits_mb, iterations) to resume from`);
  }
  const s = r.server;
  let server: Matrix['server'];
  if (s.kind === 'standin') server = { kind: 'standin' };
  else if (s.kind === 'binary' && s.path) server = s.workdir ? { kind: 'binary', binary: s.path, workdir: s.workdir } : { kind: 'binary', binary: s.path };
  else if (s.kind === 'source' && s.path && s.build?.command) server = { kind: 'source', source: s.path, build: s.build.command };
  else throw new InputError(`${where}: cannot tell which server the run used (server ${JSON.stringify(s)})`);
  const m = r.matrix;
  return {
    sizes: m.sizes.map((x) => ({ label: x.label, bytes: x.bytes })),
    memoryLimitsMb: [...m.memory_limits_mb],
    iterations: m.iterations,
    warmupIterations: m.warmup_iterations,
    uploadTimeoutSeconds: m.upload_timeout_seconds,
    readinessTimeoutSeconds: m.readiness_timeout_seconds,
    provider: r.provider,
    server,
    vmCpus: m.vm_cpus,
    vmBox: m.vm_box,
    concurrency: [...m.concurrency],
    ...(m.judgment?.length ? { judgment: m.judgment } : {}),
    noiseCuts: [...(m.noise_cuts ?? [])],
  };
}

// config.json's schema, one object per section. A field a run of an older suite did not write gets a
// neutral default (text "", no git, the seed's timeouts); every number is checked against its Bound
// (lib/bounds.ts), as matrix.yaml's are, so a run's own record always reads back.

/** Text, or `fallback` when absent or null. */
const text = <F extends string | null>(fallback: F) => z.string({ error: 'must be text' }).nullish().transform((v) => v ?? fallback);
const str = text('');
const bool = (fallback: boolean) => z.boolean({ error: 'must be true or false' }).default(fallback);
const strings = z.array(z.string({ error: 'must be a list of text' }), { error: 'must be a list of text' }).nullish().transform((v) => v ?? []);
const textMap = z.record(z.string(), z.string({ error: 'must be text' }), { error: 'must be an object' });
/** An object whose absence (or null) reads as {}: every field its default. */
const section = <S extends z.core.$ZodLooseShape>(shape: S) => z.preprocess((v) => v ?? {}, z.object(shape, { error: 'must be an object' }));
/** Absent or null: left out. */
const dropNull = <T>(v: T | null | undefined): T | undefined => v ?? undefined;

const gitRecord = z.object({ commit: str, branch: str, dirty: bool(false) }, { error: 'must be an object or null' })
  .nullish().transform((v) => v ?? null);

const buildRecord = z.object({
  ref: str, command: strings, go_version: text(null), binary_path: str,
  tree: z.string({ error: 'must be text' }).nullish().transform(dropNull),
  build_seconds: z.number().catch(0), cached: bool(false),
}, { error: 'must be an object' });

const serverRecord = section({
  kind: z.enum(['standin', 'binary', 'source'], { error: 'must be standin, binary or source' }).nullish().transform((v) => v ?? 'standin'),
  path: text(null), git: gitRecord,
  standin_env: z.preprocess((v) => v ?? {}, textMap).optional(),
  build: buildRecord.nullish().transform(dropNull),
  workdir: z.string({ error: 'must be text' }).nullish(),
});

const hostRecord = section({
  hostname: str, cpu_model: str, cores: wholeFrom(0).default(0), kernel: str, memory_bytes: wholeFrom(0).default(0),
  machine: z.string({ error: 'must be text' }).nullish(),
  hypervisor: z.boolean({ error: 'must be true or false' }).nullish(),
  ci: z.preprocess((v) => v ?? {}, textMap).optional(),
});

const matrixSection = section({
  sizes: z.array(z.object({ label: z.string({ error: 'must be non-empty text' }).min(1, { error: 'must be non-empty text' }), bytes: wholeIn(SIZE_BYTES) },
    { error: 'must be {label, bytes}' }), { error: 'must be a list of {label, bytes}' }).nullish().transform((v) => v ?? []),
  memory_limits_mb: z.array(wholeIn(MEMORY_MB), { error: 'must be a list of whole numbers' }).nullish().transform((v) => v ?? []),
  iterations: wholeIn(ITERATIONS).optional(),
  warmup_iterations: wholeIn(WARMUP_ITERATIONS).optional(),
  upload_timeout_seconds: wholeIn(TIMEOUT_SECONDS).default(DEFAULT_TIMEOUTS.uploadSeconds),
  readiness_timeout_seconds: wholeIn(TIMEOUT_SECONDS).default(DEFAULT_TIMEOUTS.readinessSeconds),
  vm_cpus: wholeIn(VM_CPUS).default(1),
  vm_box: text(null),
  concurrency: z.array(wholeIn(CONCURRENCY), { error: 'must be a list of whole numbers' }).default([1]),
  judgment: judgmentRecord.optional(),
  noise_cuts: z.array(z.string({ error: 'must be a list of names' }), { error: 'must be a list of names' }).transform((v, ctx) => {
    try { return parseNoiseCuts(v.join(',') || 'none'); } catch (e) { ctx.addIssue({ code: 'custom', message: (e as Error).message }); return z.NEVER; }
  }).optional(),
}).superRefine((m, ctx) => {
  if (m.iterations !== undefined && m.warmup_iterations !== undefined && m.warmup_iterations >= m.iterations) {
    ctx.addIssue({ code: 'custom', path: ['warmup_iterations'], message: `must be a whole number from 0 to ${m.iterations - 1}` });
  }
}).transform(({ iterations = 1, warmup_iterations, ...m }): MatrixRecord => ({
  sizes: m.sizes, memory_limits_mb: m.memory_limits_mb, iterations,
  // Before the field existed the warm-up was 1 of a case with more than one iteration.
  warmup_iterations: warmup_iterations ?? defaultWarmup(iterations),
  upload_timeout_seconds: m.upload_timeout_seconds, readiness_timeout_seconds: m.readiness_timeout_seconds,
  vm_cpus: m.vm_cpus, vm_box: m.vm_box, concurrency: m.concurrency,
  ...(m.judgment?.length ? { judgment: m.judgment } : {}),
  ...(m.noise_cuts !== undefined ? { noise_cuts: m.noise_cuts } : {}),
}));

/** ab.stopping_rule: a re-read run is judged by the rule it ran with. */
const RULE = 'must be a group-sequential rule with power spending';
const above0 = z.number({ error: 'must be a number above 0' }).gt(0, { error: 'must be a number above 0' });
const fraction = z.number({ error: 'must be a number above 0 and below 1' }).gt(0, { error: 'must be a number above 0 and below 1' }).lt(1, { error: 'must be a number above 0 and below 1' });
const stoppingRule = section({
  kind: z.literal('group-sequential', { error: RULE }), spending: z.literal('power', { error: RULE }),
  spending_power: above0, alpha: fraction, cases: wholeFrom(1),
  looks: z.array(wholeFrom(1), { error: 'must be rising whole numbers' }).min(1, { error: 'must be rising whole numbers' })
    .refine((l) => l.every((x, i) => i === 0 || x > l[i - 1]), { error: 'must be rising whole numbers' }),
  noise_pct: z.number({ error: 'must be a number of at least 0' }).min(0, { error: 'must be a number of at least 0' }),
  confidence: fraction,
  same_confidence: fraction.optional(),
  serial_check: z.boolean({ error: 'must be true or false' }).optional(),
});

const VERDICTS = 'must be a list of faster, slower, same, inconclusive';
const caseStop = z.object({
  case: z.string({ error: 'must be text' }), rounds: wholeFrom(0),
  state: z.enum(['decided', 'cap', 'pooled'], { error: 'must be decided, cap or pooled' }),
  verdicts: z.array(z.enum(['faster', 'slower', 'same', 'inconclusive'], { error: VERDICTS }), { error: VERDICTS }),
  rounds_by_side: z.array(wholeFrom(0), { error: 'must be a list of whole numbers' }).optional(),
  variance_factor_by_side: z.array(z.number().min(1), { error: 'must be a list of numbers of at least 1' }).optional(),
  // state pooled: the pooled change and what it pooled when the case stopped (written for the reader).
  pooled: z.record(z.string(), z.unknown(), { error: 'must be an object' }).optional(),
}, { error: 'must be {case, rounds, state, verdicts}' }).transform((s) => s as CaseStop);

/** ab.pooled_rule: a re-read run is judged by the pool it ran with. */
const pooledRuleRecord = z.object({
  kind: z.literal('pooled-same', { error: 'must be a pooled-same rule' }),
  noise_pct: z.number({ error: 'must be a number of at least 0' }).min(0, { error: 'must be a number of at least 0' }),
  confidence: fraction, stray_alpha: fraction,
  case_band_max_pct: z.number({ error: 'must be a number of at least 0' }).min(0, { error: 'must be a number of at least 0' }),
  min_rounds: wholeFrom(2), cases: wholeFrom(1),
  // Runs before 2026-12-08 pooled every round alike.
  weighting: z.enum(['precision', 'rounds'], { error: 'must be precision or rounds' }).default('rounds'),
}, { error: 'must be an object' });

const abRecord = z.object({
  refs: strings, this_ref: wholeFrom(0).default(0),
  /** null in a folder merged from shards. */
  seed: wholeFrom(0).nullable().default(0),
  parent: str, order: str,
  stopping_rule: stoppingRule.optional(),
  stops: z.array(caseStop, { error: 'must be a list' }).optional(),
  pooled_rule: pooledRuleRecord.optional(),
}, { error: 'must be an object' });

/** shard: a resumed shard runs the same cases, and merge-runs checks them. */
const shardRecord = section({
  index: wholeFrom(1), total: wholeFrom(1), source: z.string({ error: 'must be text' }), rule: z.string({ error: 'must be text' }),
  cases: z.array(z.string({ error: 'must be a list of case ids' }), { error: 'must be a list of case ids' }),
  planned_upload_bytes: wholeFrom(0), planned_boots: wholeFrom(0),
}).superRefine((s, ctx) => {
  if (s.index > s.total) ctx.addIssue({ code: 'custom', path: ['index'], message: `must be at most shard.total (${s.total})` });
});

const resumeRecord = z.object({
  started_at: str, command: strings, suite_version: str, suite_git: gitRecord, server: serverRecord, host: hostRecord,
  dropped_rounds: z.array(z.object({ case: str, iteration: wholeFrom(1), sides: strings }, { error: 'must be an object' }), { error: 'must be a list' }).optional(),
}, { error: 'must be an object' });

const runRecord = z.object({
  suite_version: str, suite_git: gitRecord,
  schema: z.literal(CONFIG_SCHEMA).default(CONFIG_SCHEMA), // another was refused above, with its own message
  command: strings, matrix_file: str, started_at: str, ended_at: text(null),
  // A record without the field was written before runs could be cut short: it finished.
  finished: bool(true),
  stop_reason: text(null),
  provider: z.enum(PROVIDERS, { error: `must be one of ${PROVIDERS.join(', ')}` }).nullish().transform((v) => v ?? 'local'),
  provider_facts: z.preprocess((v) => v ?? {}, z.record(z.string(), z.record(z.string(), z.unknown(), { error: 'must be an object' }), { error: 'must be an object' })),
  server: serverRecord,
  ab: abRecord.nullish().transform(dropNull),
  matrix: matrixSection,
  host: hostRecord,
  resumes: z.array(resumeRecord, { error: 'must be a list' }).optional(),
  shard: shardRecord.optional(),
  merge: z.preprocess((v) => v ?? {}, z.record(z.string(), z.unknown(), { error: 'must be an object' })).optional(),
  // Written for the reader and report.md (estimate against actual); its fields are figures.
  plan: z.record(z.string(), z.unknown(), { error: 'must be an object' }).transform((p) => p as unknown as PlanRecord).optional(),
  floor: section({
    bottom_mb: wholeIn(MEMORY_MB), top_mb: wholeIn(MEMORY_MB), tries: wholeFrom(1),
    servers: strings, this_server: wholeFrom(0), parent: text(null),
    searches: z.array(z.object({
      file_size_bytes: wholeIn(SIZE_BYTES), concurrency: wholeIn(CONCURRENCY),
      seconds: z.number({ error: 'must be a number of at least 0' }).min(0, { error: 'must be a number of at least 0' }),
    }, { error: 'must be {file_size_bytes, concurrency, seconds}' }), { error: 'must be a list' }),
  }).optional(),
});

/**
 * config.json's parsed JSON as a RunRecord, every field checked; `where` names
 * the file in messages (exit 2: "FILE: matrix.memory_limits_mb[0]: must be a
 * whole number from 1 to 1048576 (got 0)").
 */
export function parseRunRecord(json: unknown, where: string): RunRecord {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InputError(`${where}: (top level): expected a JSON object (got ${JSON.stringify(Array.isArray(json) ? 'an array' : json)})`);
  }
  const schema = (json as { schema?: unknown }).schema;
  if (schema !== undefined && schema !== CONFIG_SCHEMA) {
    throw new InputError(`${where}: unknown schema ${JSON.stringify(schema)} (this suite reads schema ${CONFIG_SCHEMA})`);
  }
  const parsed = runRecord.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    // An unknown field is named itself: matrix.judgment[0].size, not the object that holds it.
    const i = first.code === 'unrecognized_keys' ? { ...first, path: [...first.path, first.keys[0]] } : first;
    const field = i.path.map((p, k) => (typeof p === 'number' ? `[${p}]` : k === 0 ? String(p) : `.${String(p)}`)).join('');
    const got = i.path.reduce<unknown>((v, p) => (v as Record<PropertyKey, unknown> | undefined)?.[p], json);
    throw new InputError(`${where}: ${field}: ${i.message} (got ${JSON.stringify(got)})`);
  }
  return parsed.data;
}
