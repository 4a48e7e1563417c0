// matrix.yaml: load, validate (every error names the key, the value and the
// line), apply CLI overrides, and expand to the ordered list of cases.
//   const m = loadMatrixFile('matrix.yaml'); const cases = expandCases(m);
import fs from 'node:fs';
import path from 'node:path';
import YAML, { LineCounter, isAlias, isCollection, isMap, isScalar, visit, type Node } from 'yaml';
import { z } from 'zod';
import { CONCURRENCY, ITERATIONS, parseWhole, scalarBy, TIMEOUT_SECONDS, VM_CPUS, WARMUP_ITERATIONS, type Bound } from './bounds.ts';
import { InputError } from './errors.ts';
import { judgmentYaml, unmatchedSelectors, type JudgmentRule } from './stats/judgment.ts';
import { DEFAULT_NOISE_CUTS, parseNoiseCuts, type NoiseCut } from './noise-cuts.ts';
import { parseMemoryMb, parseSize, sizeLabel } from './units.ts';

export const PROVIDERS = ['local', 'qemu', 'vagrant'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export type ServerConfig =
  | { kind: 'standin' }
  /** `workdir`: the folder the binary runs in (server.workdir), for a server that reads files relative to it. */
  | { kind: 'binary'; binary: string; workdir?: string }
  /** A git checkout of the server; `build` is an argv with `{out}` standing for the binary's path. */
  | { kind: 'source'; source: string; build: string[] };

/** PicoShare's build; leading NAME=value elements are the build's environment (cgo: SQLite needs it). */
export const DEFAULT_BUILD = ['CGO_ENABLED=1', 'go', 'build', '-o', '{out}', './cmd/picoshare'];

export interface SizeSpec { label: string; bytes: number }

export interface Matrix {
  sizes: SizeSpec[];
  memoryLimitsMb: number[];
  iterations: number;
  /** Leading iterations of each case treated as warm-up (kept in raw.csv, left out of medians). */
  warmupIterations: number;
  uploadTimeoutSeconds: number;
  readinessTimeoutSeconds: number;
  provider: ProviderName;
  server: ServerConfig;
  /** vCPUs per VM (VM providers only). */
  vmCpus: number;
  /** vagrant: the box to boot instead of the suite's own (vm.box; UPS_VM_BOX overrides it). */
  vmBox: string | null;
  /** Uploads of the same file started together, one case per entry (default [1]: one at a time). */
  concurrency: number[];
  /** How cases are judged (matrix.yaml `judgment`, lib/stats/judgment.ts): a noise band of their own, or left out of the verdict. */
  judgment?: JudgmentRule[];
  /** What is done before each measured upload to cut noise (lib/noise-cuts.ts); absent: the defaults. */
  noiseCuts?: NoiseCut[];
}

/** One iteration of a case: `concurrency` (absent: 1) uploads of the size started together under the memory limit. */
export interface Case { memoryMb: number; size: SizeSpec; concurrency?: number; iteration: number }

/**
 * The index of the first value equal to an earlier one, or null: a case is
 * (size, memory limit, iteration), which --resume and compare-runs rely on
 * being unique.
 */
export function repeated(values: readonly number[]): number | null {
  const i = values.findIndex((v, k) => values.indexOf(v) < k);
  return i < 0 ? null : i;
}

/** What --quick runs: small sizes and limits that finish in well under a minute on the local provider. */
export const QUICK = { sizes: ['20MiB', '5MiB'], memoryLimitsMb: [512, 256], iterations: 2 };

export const DEFAULT_TIMEOUTS = { uploadSeconds: 1800, readinessSeconds: 60 };

/** An iteration count: a positive whole number up to ITERATIONS.max. */
export function parseIterations(text: string | number): number {
  return parseWhole(ITERATIONS, text);
}

/** Uploads at once: a whole number from 1 to CONCURRENCY.max. */
export function parseConcurrency(v: string): number {
  return parseWhole(CONCURRENCY, v);
}

// matrix.yaml's schema, one object per section; every number is checked against its Bound (lib/bounds.ts),
// as config.json's are. A message is what follows "FILE:LINE: KEY: " (parseMatrix adds those and the value).

/** A mapping of `shape`'s keys and no others. */
function mapping<S extends z.core.$ZodLooseShape>(shape: S) {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, { error: (i) => (i.code === 'unrecognized_keys' ? `(known: ${known})` : `must be a mapping (${known})`) });
}
/** A non-empty list, no entry twice: a case is (size, memory limit, uploads at once, iteration), which --resume and compare-runs rely on being unique. */
function listOnce<T>(item: z.ZodType<T, unknown>, key: (x: T) => number, twice: (x: T) => string) {
  return z.array(item, { error: 'must be a list' }).min(1, { error: 'must not be empty' }).superRefine((xs, ctx) => {
    const i = repeated(xs.map(key));
    if (i !== null) ctx.addIssue({ code: 'custom', path: [i], message: twice(xs[i]) });
  });
}
const whole = (b: Bound) => scalarBy((v) => parseWhole(b, v));

const timeoutsYaml = mapping({
  upload_seconds: whole(TIMEOUT_SECONDS).default(DEFAULT_TIMEOUTS.uploadSeconds),
  readiness_seconds: whole(TIMEOUT_SECONDS).default(DEFAULT_TIMEOUTS.readinessSeconds),
}).default({ upload_seconds: DEFAULT_TIMEOUTS.uploadSeconds, readiness_seconds: DEFAULT_TIMEOUTS.readinessSeconds });

const BOX = 'must be a Vagrant box name, e.g. debian/bookworm64';
const vmYaml = mapping({
  cpus: whole(VM_CPUS).default(1),
  box: z.string({ error: BOX }).trim().min(1, { error: BOX }).optional(),
}).default({ cpus: 1 });

const SERVER = 'must be "standin" or a mapping with source (and build) or binary';
const PATH = 'must be a non-empty path';
const BUILD = 'must be a non-empty list of arguments, with {out} for the binary path';
const serverKeys = {
  source: z.string({ error: PATH }).min(1, { error: PATH }).optional(),
  build: z.array(z.union([z.string(), z.number()], { error: BUILD }).transform(String), { error: BUILD }).min(1, { error: BUILD })
    .refine((b) => b.every((a) => a !== ''), { error: BUILD, abort: true })
    .refine((b) => b.some((a) => a.includes('{out}')), { error: 'must contain {out} (where the binary goes)' }).optional(),
  binary: z.string({ error: PATH }).min(1, { error: PATH }).optional(),
  workdir: z.string({ error: PATH }).min(1, { error: PATH }).optional(),
};
/** "standin" (or nothing): the stand-in; else a mapping with binary (and workdir) or source (and build). */
const serverYaml = z.preprocess((v) => (v === 'standin' ? undefined : v), z.strictObject(serverKeys, {
  error: (i) => (i.code === 'unrecognized_keys' ? `(known: ${Object.keys(serverKeys).join(', ')})` : SERVER),
}).superRefine((s, ctx) => {
  const fail = (message: string, path: string[] = []) => ctx.addIssue({ code: 'custom', path, message });
  if (s.binary && s.source) fail('give either binary or source, not both');
  else if (!s.binary && !s.source) fail('needs source (a git checkout) or binary');
  else if (s.source && s.workdir) fail('only with server.binary: a server built from source runs in its own tree', ['workdir']);
}).optional());

const matrixYaml = mapping({
  sizes: listOnce(scalarBy((v) => ({ label: sizeLabel(v), bytes: parseSize(v) })), (s) => s.bytes,
    (s) => `the same size as an earlier entry (${s.bytes} bytes): give each once`),
  memory_limits: listOnce(scalarBy(parseMemoryMb), (x) => x, () => 'given twice: give each once'),
  concurrency: listOnce(whole(CONCURRENCY), (x) => x, () => 'given twice: give each once').default([1]),
  // 5 = 1 warm-up + 4 measured, the fewest that let compare-runs' p-value get below 0.05.
  iterations: whole(ITERATIONS).default(5),
  warmup_iterations: whole(WARMUP_ITERATIONS).optional(),
  timeouts: timeoutsYaml,
  provider: z.enum(PROVIDERS, { error: `must be one of ${PROVIDERS.join(', ')}` }).default('local'),
  judgment: judgmentYaml.optional(),
  // What is done before each measured upload to cut noise (lib/noise-cuts.ts): a list of names, [] or none for no cuts.
  noise_cuts: z.union([z.array(z.union([z.string(), z.number()]).transform(String)), z.string()], { error: 'must be a list of names, or none' })
    .transform((v, ctx) => {
      try { return parseNoiseCuts(Array.isArray(v) ? v.join(',') || 'none' : v); } catch (e) { ctx.addIssue({ code: 'custom', message: (e as Error).message }); return z.NEVER; }
    }).optional(),
  server: serverYaml,
  vm: vmYaml,
}).superRefine((m, ctx) => {
  for (const issue of unmatchedSelectors(m.judgment ?? [], { sizes: m.sizes, memoryLimitsMb: m.memory_limits, concurrency: m.concurrency })) {
    ctx.addIssue({ code: 'custom', ...issue });
  }
  if (m.warmup_iterations !== undefined && m.warmup_iterations >= m.iterations) {
    ctx.addIssue({ code: 'custom', path: ['warmup_iterations'], message: `must be less than iterations (${m.iterations}): warm-up is not measured, so nothing would be` });
  }
});

/** Parses matrix.yaml text; `file` is only for messages. Relative server paths resolve against the file's folder. */
export function parseMatrix(text: string, file: string): Matrix {
  const lc = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lc, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new InputError(`${file}:${e.linePos?.[0].line ?? '?'}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  if (!isMap(doc.contents)) throw new InputError(`${file}: expected a mapping of keys (sizes, memory_limits, ...)`);
  // Anchors and aliases resolve to their values (errors then name the line the value is written on);
  // an alias with no anchor above it, and YAML's merge key, are refused by name with their line.
  visit(doc, {
    Alias(_, alias) {
      if (!alias.resolve(doc)) throw new InputError(`${file}:${lc.linePos(alias.range![0]).line}: alias *${alias.source} names no anchor above it`);
    },
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.value === '<<') {
        throw new InputError(`${file}:${lc.linePos(pair.key.range![0]).line}: "<<": YAML merge keys are not supported; write the keys out (anchors and aliases of values are)`);
      }
    },
  });
  const parsed = matrixYaml.safeParse(doc.toJS());
  if (!parsed.success) throw new InputError(yamlIssue(parsed.error.issues, doc, lc, file));
  const y = parsed.data;
  const baseDir = path.dirname(path.resolve(file));
  const s = y.server;
  const at = (p: string) => path.resolve(baseDir, p);
  return {
    sizes: y.sizes, memoryLimitsMb: y.memory_limits, iterations: y.iterations,
    warmupIterations: y.warmup_iterations ?? defaultWarmup(y.iterations),
    uploadTimeoutSeconds: y.timeouts.upload_seconds, readinessTimeoutSeconds: y.timeouts.readiness_seconds,
    provider: y.provider,
    server: !s ? { kind: 'standin' }
      : s.binary ? (s.workdir ? { kind: 'binary', binary: at(s.binary), workdir: at(s.workdir) } : { kind: 'binary', binary: at(s.binary) })
        : { kind: 'source', source: at(s.source!), build: s.build ?? DEFAULT_BUILD },
    vmCpus: y.vm.cpus, vmBox: y.vm.box ?? null, concurrency: y.concurrency,
    ...(y.judgment?.length ? { judgment: y.judgment } : {}),
    noiseCuts: y.noise_cuts ?? [...DEFAULT_NOISE_CUTS],
  };
}

/**
 * The first problem in the file (by position) as "FILE:LINE: KEY: WHY (got VALUE)", the line and
 * value from the YAML node at the issue's path; an unknown key as 'FILE:LINE: unknown key "KEY" (known: ...)'.
 */
function yamlIssue(issues: z.core.$ZodIssue[], doc: YAML.Document, lc: LineCounter, file: string): string {
  const nodeOf = (i: z.core.$ZodIssue): Node | undefined => {
    // Through aliases (`memory_limits: *limits`): the line is where the value is written.
    let at = doc.contents as Node | null | undefined;
    for (const k of i.path) {
      if (isAlias(at)) at = at.resolve(doc);
      // A key the file lacks (a rule's missing reason): the line of the mapping that lacks it.
      const next = isCollection(at) ? (at.get(k, true) as Node | undefined) : undefined;
      if (next === undefined) break;
      at = next;
    }
    if (isAlias(at)) at = at.resolve(doc);
    if (!at) return undefined;
    if (i.code !== 'unrecognized_keys' || !isMap(at)) return at;
    return at.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === i.keys[0])?.key as Node | undefined;
  };
  // A rule over a whole mapping (give either noise or ignore) waits for the mapping's own keys to be right.
  const within = (outer: z.core.$ZodIssue, inner: z.core.$ZodIssue) => inner !== outer && inner.code !== 'custom' && outer.path.every((p, k) => inner.path[k] === p);
  const shown = issues.filter((o) => o.code !== 'custom' || !issues.some((n) => within(o, n)));
  const first = shown.map((i) => ({ i, node: nodeOf(i) })).sort((a, b) => (a.node?.range?.[0] ?? -1) - (b.node?.range?.[0] ?? -1))[0];
  const { i, node } = first;
  const where = node?.range ? `${file}:${lc.linePos(node.range[0]).line}` : file;
  // A list's index is named where a key follows it (judgment[0].match), not for a list of values (sizes).
  const key = i.path.map((p, k) => (typeof p === 'string' ? `.${p}` : isCollection(doc.getIn(i.path.slice(0, k + 1), true)) ? `[${String(p)}]` : ''))
    .join('').replace(/^\./, '');
  if (i.code === 'unrecognized_keys') return `${where}: unknown key "${key ? `${key}.` : ''}${i.keys[0]}" ${i.message}`;
  const value = isScalar(node) ? JSON.stringify(node.value) : node ? JSON.stringify(node.toJSON()) : 'nothing';
  return `${where}: ${key}: ${i.message} (got ${value})`;
}

export function defaultWarmup(iterations: number): number {
  return iterations > 1 ? 1 : 0;
}

export function loadMatrixFile(file: string): Matrix {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read matrix file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseMatrix(text, file);
}

/** Memory limits largest first, sizes largest first, uploads at once as given, then iterations: the order cases run in. */
export function expandCases(m: Matrix): Case[] {
  const cases: Case[] = [];
  const mems = [...m.memoryLimitsMb].sort((a, b) => b - a);
  const sizes = [...m.sizes].sort((a, b) => b.bytes - a.bytes);
  for (const memoryMb of mems) {
    for (const size of sizes) {
      for (const concurrency of m.concurrency) {
        for (let iteration = 1; iteration <= m.iterations; iteration++) {
          // One at a time is the case as it always was (no concurrency field), so older plans and rows still match.
          cases.push(concurrency === 1 ? { memoryMb, size, iteration } : { memoryMb, size, concurrency, iteration });
        }
      }
    }
  }
  return cases;
}
