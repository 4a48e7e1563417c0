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
import type { ComparisonStop } from './adaptive.ts';
import type { StoppingRule } from './sequential.ts';
import type { Family } from './family.ts';
import type { ShardRecord } from './shard.ts';
import { DEFAULT_TIMEOUTS, MAX_ITERATIONS, MAX_TIMEOUT_SECONDS, PROVIDERS, type Matrix, type ProviderName } from './matrix.ts';

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
}

/** One side of an interleaved run of several refs. */
export interface AbRecord {
  refs: string[];
  this_ref: number;
  /** null in a folder merged from shards, each of which drew its own (merge.shards has them). */
  seed: number | null;
  parent: string;
  order: string;
  /** Set when rounds were adaptive: the group-sequential rule cases stopped by (lib/sequential.ts), so a re-read run is judged the same way. */
  stopping_rule?: StoppingRule;
  /** Adaptive rounds: each comparison (case x later ref) the rule stopped, when and why. */
  stops?: ComparisonStop[];
}

/** The host's fingerprint (lib/host.ts); machine, hypervisor and ci are absent from records of older suites. */
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
  };
}

/** The record of a run about to start: not finished, no facts yet. */
export function newRunRecord(r: Omit<RunRecord, 'schema' | 'ended_at' | 'finished' | 'stop_reason' | 'provider_facts'>): RunRecord {
  return { ...r, schema: CONFIG_SCHEMA, ended_at: null, finished: false, stop_reason: null, provider_facts: {} };
}

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
  };
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * config.json's parsed JSON as a RunRecord, every field checked; `where` names
 * the file in messages (exit 2: "FILE: matrix.memory_limits_mb[0]: must be a
 * positive whole number (got 0)"). Fields a run of an older suite did not write
 * get defaults: unknown text as "", no git, the seed's timeouts.
 */
export function parseRunRecord(json: unknown, where: string): RunRecord {
  const fail = (field: string, what: string, got: unknown): never => {
    throw new InputError(`${where}: ${field}: ${what} (got ${JSON.stringify(got)})`);
  };
  if (!isObject(json)) return fail('(top level)', 'expected a JSON object', Array.isArray(json) ? 'an array' : json);
  if (json.schema !== undefined && json.schema !== CONFIG_SCHEMA) {
    throw new InputError(`${where}: unknown schema ${JSON.stringify(json.schema)} (this suite reads schema ${CONFIG_SCHEMA})`);
  }
  const text = (o: Json, key: string, field: string, fallback: string | null): string | null => {
    const v = o[key];
    if (v === undefined || v === null) return fallback;
    return typeof v === 'string' ? v : fail(field, 'must be text', v);
  };
  const str = (o: Json, key: string, field: string): string => text(o, key, field, '') ?? '';
  const bool = (o: Json, key: string, field: string, fallback: boolean): boolean => {
    const v = o[key];
    if (v === undefined) return fallback;
    return typeof v === 'boolean' ? v : fail(field, 'must be true or false', v);
  };
  const whole = (v: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number =>
    Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max
      ? (v as number)
      : fail(field, max === Number.MAX_SAFE_INTEGER ? `must be a whole number of at least ${min}` : `must be a whole number from ${min} to ${max}`, v);
  const obj = (o: Json, key: string, field: string): Json => {
    const v = o[key];
    if (v === undefined || v === null) return {};
    return isObject(v) ? v : fail(field, 'must be an object', v);
  };
  const git = (v: unknown, field: string): GitRecord | null => {
    if (v === undefined || v === null) return null;
    if (!isObject(v)) return fail(field, 'must be an object or null', v);
    return { commit: str(v, 'commit', `${field}.commit`), branch: str(v, 'branch', `${field}.branch`), dirty: bool(v, 'dirty', `${field}.dirty`, false) };
  };
  const strings = (v: unknown, field: string): string[] =>
    v === undefined || v === null ? [] : Array.isArray(v) && v.every((x) => typeof x === 'string') ? [...v] : fail(field, 'must be a list of text', v);

  const provider = json.provider ?? 'local';
  if (!(PROVIDERS as readonly unknown[]).includes(provider)) fail('provider', `must be one of ${PROVIDERS.join(', ')}`, provider);

  const server = (v: Json, field: string): ServerRecord => {
    const kind = v.kind ?? 'standin';
    if (kind !== 'standin' && kind !== 'binary' && kind !== 'source') return fail(`${field}.kind`, 'must be standin, binary or source', kind);
    const out: ServerRecord = { kind, path: text(v, 'path', `${field}.path`, null), git: git(v.git, `${field}.git`) };
    if (v.standin_env !== undefined) {
      const env = obj(v, 'standin_env', `${field}.standin_env`);
      for (const [k, x] of Object.entries(env)) if (typeof x !== 'string') fail(`${field}.standin_env.${k}`, 'must be text', x);
      out.standin_env = env as Record<string, string>;
    }
    const workdir = text(v, 'workdir', `${field}.workdir`, null);
    if (workdir !== null) out.workdir = workdir;
    if (v.build !== undefined && v.build !== null) {
      const b = obj(v, 'build', `${field}.build`);
      out.build = {
        ref: str(b, 'ref', `${field}.build.ref`), command: strings(b.command, `${field}.build.command`),
        go_version: text(b, 'go_version', `${field}.build.go_version`, null), binary_path: str(b, 'binary_path', `${field}.build.binary_path`),
        build_seconds: typeof b.build_seconds === 'number' ? b.build_seconds : 0, cached: bool(b, 'cached', `${field}.build.cached`, false),
      };
      const tree = text(b, 'tree', `${field}.build.tree`, null);
      if (tree !== null) out.build.tree = tree;
    }
    return out;
  };
  const host = (v: Json, field: string): HostRecord => {
    const h: HostRecord = {
      hostname: str(v, 'hostname', `${field}.hostname`), cpu_model: str(v, 'cpu_model', `${field}.cpu_model`),
      cores: v.cores === undefined ? 0 : whole(v.cores, `${field}.cores`, 0),
      kernel: str(v, 'kernel', `${field}.kernel`),
      memory_bytes: v.memory_bytes === undefined ? 0 : whole(v.memory_bytes, `${field}.memory_bytes`, 0),
    };
    if (v.machine !== undefined) h.machine = text(v, 'machine', `${field}.machine`, null);
    if (v.hypervisor !== undefined) h.hypervisor = v.hypervisor === null ? null : bool(v, 'hypervisor', `${field}.hypervisor`, false);
    if (v.ci !== undefined) {
      const ci = obj(v, 'ci', `${field}.ci`);
      for (const [k, x] of Object.entries(ci)) if (typeof x !== 'string') fail(`${field}.ci.${k}`, 'must be text', x);
      h.ci = ci as Record<string, string>;
    }
    return h;
  };

  const m = obj(json, 'matrix', 'matrix');
  const sizesIn = m.sizes ?? [];
  if (!Array.isArray(sizesIn)) fail('matrix.sizes', 'must be a list of {label, bytes}', sizesIn);
  const sizes = (sizesIn as unknown[]).map((s, i) => {
    if (!isObject(s) || typeof s.label !== 'string' || s.label === '') return fail(`matrix.sizes[${i}]`, 'must be {label, bytes}', s);
    return { label: s.label, bytes: whole(s.bytes, `matrix.sizes[${i}].bytes`, 1) };
  });
  const memIn = m.memory_limits_mb ?? [];
  if (!Array.isArray(memIn)) fail('matrix.memory_limits_mb', 'must be a list of whole numbers', memIn);
  const memory = (memIn as unknown[]).map((x, i) => whole(x, `matrix.memory_limits_mb[${i}]`, 1));
  const iterations = m.iterations === undefined ? 1 : whole(m.iterations, 'matrix.iterations', 1, MAX_ITERATIONS);
  // Before the field existed the warm-up was 1 of a case with more than one iteration (lib/cases.ts).
  const warmup = m.warmup_iterations === undefined ? (iterations > 1 ? 1 : 0)
    : whole(m.warmup_iterations, 'matrix.warmup_iterations', 0, m.iterations === undefined ? MAX_ITERATIONS : iterations - 1);
  const facts = obj(json, 'provider_facts', 'provider_facts');
  for (const [k, f] of Object.entries(facts)) if (!isObject(f)) fail(`provider_facts.${k}`, 'must be an object', f);
  const resumes = json.resumes === undefined ? undefined : Array.isArray(json.resumes)
    ? json.resumes.map((r, i): ResumeRecord => {
      if (!isObject(r)) return fail(`resumes[${i}]`, 'must be an object', r);
      return {
        started_at: str(r, 'started_at', `resumes[${i}].started_at`), command: strings(r.command, `resumes[${i}].command`),
        suite_version: str(r, 'suite_version', `resumes[${i}].suite_version`), suite_git: git(r.suite_git, `resumes[${i}].suite_git`),
        server: server(obj(r, 'server', `resumes[${i}].server`), `resumes[${i}].server`), host: host(obj(r, 'host', `resumes[${i}].host`), `resumes[${i}].host`),
      };
    })
    : fail('resumes', 'must be a list', json.resumes);
  let ab: AbRecord | undefined;
  if (json.ab !== undefined && json.ab !== null) {
    const a = obj(json, 'ab', 'ab');
    ab = {
      refs: strings(a.refs, 'ab.refs'), this_ref: a.this_ref === undefined ? 0 : whole(a.this_ref, 'ab.this_ref', 0),
      seed: a.seed === undefined ? 0 : a.seed === null ? null : whole(a.seed, 'ab.seed', 0), parent: str(a, 'parent', 'ab.parent'), order: str(a, 'order', 'ab.order'),
    };
    if (a.stopping_rule !== undefined) ab.stopping_rule = stoppingRuleOf(obj(a, 'stopping_rule', 'ab.stopping_rule'), ab.refs.length, fail);
    if (a.stops !== undefined) {
      if (!Array.isArray(a.stops)) fail('ab.stops', 'must be a list', a.stops);
      const verdicts = ['faster', 'slower', 'same', 'inconclusive'] as const;
      const isVerdict = (v: unknown): v is ComparisonStop['verdict'] => (verdicts as readonly unknown[]).includes(v);
      ab.stops = (a.stops as unknown[]).flatMap((s, i): ComparisonStop[] => {
        if (!isObject(s) || typeof s.case !== 'string' || (s.state !== 'decided' && s.state !== 'cap')) return fail(`ab.stops[${i}]`, 'must be {case, side, rounds, state, verdict}', s);
        const rounds = whole(s.rounds, `ab.stops[${i}].rounds`, 0);
        // Records before per-comparison stops: one entry per case with a verdict per later side.
        if (Array.isArray(s.verdicts) && s.verdicts.every(isVerdict)) return s.verdicts.map((verdict, k) => ({ case: s.case as string, side: k + 1, rounds, state: s.state as ComparisonStop['state'], verdict }));
        if (!isVerdict(s.verdict)) return fail(`ab.stops[${i}].verdict`, 'must be faster, slower, same or inconclusive', s.verdict);
        return [{ case: s.case, side: whole(s.side, `ab.stops[${i}].side`, 1), rounds, state: s.state, verdict: s.verdict }];
      });
    }
  }
  const record: RunRecord = {
    suite_version: str(json, 'suite_version', 'suite_version'),
    suite_git: git(json.suite_git, 'suite_git'),
    schema: CONFIG_SCHEMA,
    command: strings(json.command, 'command'),
    matrix_file: str(json, 'matrix_file', 'matrix_file'),
    started_at: str(json, 'started_at', 'started_at'),
    ended_at: text(json, 'ended_at', 'ended_at', null),
    // A record without the field was written before runs could be cut short: it finished.
    finished: bool(json, 'finished', 'finished', true),
    stop_reason: text(json, 'stop_reason', 'stop_reason', null),
    provider: provider as ProviderName,
    provider_facts: facts as Record<string, Record<string, unknown>>,
    server: server(obj(json, 'server', 'server'), 'server'),
    matrix: {
      sizes, memory_limits_mb: memory, iterations, warmup_iterations: warmup,
      upload_timeout_seconds: m.upload_timeout_seconds === undefined ? DEFAULT_TIMEOUTS.uploadSeconds : whole(m.upload_timeout_seconds, 'matrix.upload_timeout_seconds', 1, MAX_TIMEOUT_SECONDS),
      readiness_timeout_seconds: m.readiness_timeout_seconds === undefined ? DEFAULT_TIMEOUTS.readinessSeconds : whole(m.readiness_timeout_seconds, 'matrix.readiness_timeout_seconds', 1, MAX_TIMEOUT_SECONDS),
      vm_cpus: m.vm_cpus === undefined ? 1 : whole(m.vm_cpus, 'matrix.vm_cpus', 1, 256),
      vm_box: text(m, 'vm_box', 'matrix.vm_box', null),
      concurrency: m.concurrency === undefined ? [1] : Array.isArray(m.concurrency)
        ? (m.concurrency as unknown[]).map((x, i) => whole(x, `matrix.concurrency[${i}]`, 1, 64))
        : fail('matrix.concurrency', 'must be a list of whole numbers', m.concurrency),
    },
    host: host(obj(json, 'host', 'host'), 'host'),
  };
  if (ab) record.ab = ab;
  if (resumes) record.resumes = resumes;
  if (json.shard !== undefined) record.shard = shardOf(obj(json, 'shard', 'shard'), fail);
  if (json.merge !== undefined) record.merge = obj(json, 'merge', 'merge');
  return record;
}

/** ab.stopping_rule, checked field by field: a re-read run is judged by the rule it ran with. */
function stoppingRuleOf(s: Record<string, unknown>, refs: number, fail: (field: string, what: string, got: unknown) => never): StoppingRule {
  const num = (k: string, ok: (n: number) => boolean) => (typeof s[k] === 'number' && ok(s[k] as number) ? (s[k] as number) : fail(`ab.stopping_rule.${k}`, 'is out of range', s[k]));
  if (s.kind !== 'group-sequential' || s.spending !== 'power') fail('ab.stopping_rule', 'must be a group-sequential rule with power spending', s.kind);
  const looks = Array.isArray(s.looks) && s.looks.length > 0 && s.looks.every((x, i, a) => Number.isInteger(x) && x > 0 && (i === 0 || x > a[i - 1]))
    ? (s.looks as number[]) : fail('ab.stopping_rule.looks', 'must be rising whole numbers', s.looks);
  return {
    kind: 'group-sequential', spending: 'power', spending_power: num('spending_power', (n) => n > 0),
    alpha: num('alpha', (n) => n > 0 && n < 1), family: familyRecordOf(s, refs, fail), looks,
    noise_pct: num('noise_pct', (n) => n >= 0), confidence: num('confidence', (n) => n > 0 && n < 1),
    // Records before the family: `same` and the serial check as the rule now defines them.
    same_spending_power: s.same_spending_power === undefined ? 1 : num('same_spending_power', (n) => n > 0),
    serial_alpha: s.serial_alpha === undefined ? 0.01 : num('serial_alpha', (n) => n > 0 && n < 1),
  };
}

/** stopping_rule.family; a record from before it (a count of `cases`, alpha shared per case) keeps that share. */
function familyRecordOf(s: Record<string, unknown>, refs: number, fail: (field: string, what: string, got: unknown) => never): Family {
  if (s.family === undefined) {
    const n = s.cases;
    if (!(Number.isSafeInteger(n) && (n as number) > 0)) return fail('ab.stopping_rule.family', 'is missing', s.family);
    return { cases: [], servers: refs, comparisons: n as number };
  }
  const f = s.family;
  if (!isObject(f) || !Array.isArray(f.cases) || !f.cases.every((c) => typeof c === 'string') || !Number.isSafeInteger(f.servers)
    || !Number.isSafeInteger(f.comparisons) || (f.comparisons as number) < 1) return fail('ab.stopping_rule.family', 'must be {cases, servers, comparisons}', f);
  return { cases: f.cases as string[], servers: f.servers as number, comparisons: f.comparisons as number };
}

/** shard, checked field by field: a resumed shard runs the same cases, and merge-runs checks them. */
function shardOf(s: Record<string, unknown>, fail: (field: string, what: string, got: unknown) => never): ShardRecord {
  const int = (k: string, min: number) => (Number.isSafeInteger(s[k]) && (s[k] as number) >= min ? (s[k] as number) : fail(`shard.${k}`, `must be a whole number of at least ${min}`, s[k]));
  const txt = (k: string) => (typeof s[k] === 'string' ? (s[k] as string) : fail(`shard.${k}`, 'must be text', s[k]));
  const cases = Array.isArray(s.cases) && s.cases.every((c) => typeof c === 'string') ? (s.cases as string[]) : fail('shard.cases', 'must be a list of case ids', s.cases);
  const total = int('total', 1);
  const index = int('index', 1);
  if (index > total) fail('shard.index', `must be at most shard.total (${total})`, index);
  return {
    index, total, source: txt('source'), rule: txt('rule'), cases,
    planned_upload_bytes: int('planned_upload_bytes', 0), planned_boots: int('planned_boots', 0),
  };
}
