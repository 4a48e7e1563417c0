// matrix.yaml: load, validate (every error names the key, the value and the
// line), apply CLI overrides, and expand to the ordered list of cases.
//   const m = loadMatrixFile('matrix.yaml'); const cases = expandCases(m);
import fs from 'node:fs';
import path from 'node:path';
import YAML, { LineCounter, isMap, isScalar, isSeq, type Node } from 'yaml';
import { InputError } from './errors.ts';
import { parseNoiseCuts, type NoiseCut } from './noise-cuts.ts';
import { parseMemoryMb, parsePositiveInt, parseSize, sizeLabel } from './units.ts';

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

const TOP_KEYS = ['sizes', 'memory_limits', 'concurrency', 'iterations', 'warmup_iterations', 'timeouts', 'provider', 'server', 'vm', 'noise_cuts'];
/** More uploads at once than this is a typo, not a measurement: each holds the file's memory and disk share. */
export const MAX_CONCURRENCY = 64;
const TIMEOUT_KEYS = ['upload_seconds', 'readiness_seconds'];
// Node's timers hold at most 2^31-1 ms (24.8 days; beyond, they fire at once), and a VM under
// TCG multiplies every timeout by 4 (TCG_TIMEOUT_FACTOR in qemu.ts): 536870 s is the true bound.
export const MAX_TIMEOUT_SECONDS = 500_000;
export const DEFAULT_TIMEOUTS = { uploadSeconds: 1800, readinessSeconds: 60 };
const SERVER_KEYS = ['source', 'build', 'binary', 'workdir'];
/**
 * Far above any real run (1000 iterations of a 1 MiB case take an hour), far below what exhausts the
 * suite's memory: 999999999 grew the heap past 4 GB expanding cases, then V8 aborted (exit 134).
 */
export const MAX_ITERATIONS = 1000;

/** An iteration count: a positive whole number up to MAX_ITERATIONS. */
export function parseIterations(text: string | number): number {
  const n = parsePositiveInt(text);
  if (n > MAX_ITERATIONS) throw new Error(`at most ${MAX_ITERATIONS} iterations per case`);
  return n;
}
const VM_KEYS = ['cpus', 'box'];

/** Parses matrix.yaml text; `file` is only for messages. Relative server paths resolve against the file's folder. */
export function parseMatrix(text: string, file: string): Matrix {
  const lc = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lc, uniqueKeys: true });
  const where = (node: Node | null | undefined) =>
    node?.range ? `${file}:${lc.linePos(node.range[0]).line}` : file;
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new InputError(`${file}:${e.linePos?.[0].line ?? '?'}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const root = doc.contents;
  if (!isMap(root)) throw new InputError(`${file}: expected a mapping of keys (sizes, memory_limits, ...)`);
  const fail = (key: string, node: Node | null | undefined, why: string): never => {
    const value = isScalar(node) ? JSON.stringify(node.value) : node ? JSON.stringify(node.toJSON()) : 'nothing';
    throw new InputError(`${where(node)}: ${key}: ${why} (got ${value})`);
  };
  const get = (map: typeof root, key: string) => map.get(key, true) as Node | undefined;
  const checkKeys = (map: typeof root, allowed: string[], prefix: string) => {
    for (const pair of map.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (!allowed.includes(k)) {
        throw new InputError(`${where(pair.key as Node)}: unknown key "${prefix}${k}" (known: ${allowed.join(', ')})`);
      }
    }
  };
  checkKeys(root, TOP_KEYS, '');

  const list = (key: string): Node[] => {
    const node = get(root, key);
    if (!isSeq(node)) return fail(key, node, 'must be a list');
    if (node.items.length === 0) return fail(key, node, 'must not be empty');
    return node.items as Node[];
  };
  const scalar = (key: string, node: Node | undefined, parse: (v: string) => number) => {
    if (!isScalar(node)) return fail(key, node, 'must be a single value');
    try { return parse(String(node.value)); } catch (e) { return fail(key, node, (e as Error).message); }
  };
  const sizeNodes = list('sizes');
  const sizes = sizeNodes.map((n) => {
    const bytes = scalar('sizes', n, parseSize);
    return { label: sizeLabel(String((n as { value: unknown }).value)), bytes };
  });
  const memoryNodes = list('memory_limits');
  const memoryLimitsMb = memoryNodes.map((n) => scalar('memory_limits', n, parseMemoryMb));
  const sizeTwice = repeated(sizes.map((x) => x.bytes));
  if (sizeTwice !== null) fail('sizes', sizeNodes[sizeTwice], `the same size as an earlier entry (${sizes[sizeTwice].bytes} bytes): give each once`);
  const memoryTwice = repeated(memoryLimitsMb);
  if (memoryTwice !== null) fail('memory_limits', memoryNodes[memoryTwice], 'given twice: give each once');
  const concurrencyNode = get(root, 'concurrency');
  const concurrencyNodes = concurrencyNode === undefined ? [] : list('concurrency');
  const concurrency = concurrencyNodes.length === 0 ? [1] : concurrencyNodes.map((n) => scalar('concurrency', n, parseConcurrency));
  const concurrencyTwice = repeated(concurrency);
  if (concurrencyTwice !== null) fail('concurrency', concurrencyNodes[concurrencyTwice], 'given twice: give each once');
  const num = (key: string, node: Node | undefined, dflt: number) =>
    node === undefined ? dflt : scalar(key, node, parsePositiveInt);
  // 5 = 1 warm-up + 4 measured, the fewest that let compare-runs' p-value get below 0.05.
  const iterationsNode = get(root, 'iterations');
  const iterations = iterationsNode === undefined ? 5 : scalar('iterations', iterationsNode, parseIterations);
  const warmupNode = get(root, 'warmup_iterations');
  const warmupIterations = warmupNode === undefined ? defaultWarmup(iterations)
    : scalar('warmup_iterations', warmupNode, (v) => {
      if (!/^\d+$/.test(v.trim())) throw new Error('not a whole number');
      return Number(v);
    });
  if (warmupNode !== undefined && warmupIterations >= iterations) {
    fail('warmup_iterations', warmupNode, `must be less than iterations (${iterations}): warm-up is not measured, so nothing would be`);
  }

  let uploadTimeoutSeconds = DEFAULT_TIMEOUTS.uploadSeconds;
  let readinessTimeoutSeconds = DEFAULT_TIMEOUTS.readinessSeconds;
  const timeouts = get(root, 'timeouts');
  if (timeouts !== undefined) {
    if (!isMap(timeouts)) fail('timeouts', timeouts, 'must be a mapping (upload_seconds, readiness_seconds)');
    const t = timeouts as typeof root;
    checkKeys(t, TIMEOUT_KEYS, 'timeouts.');
    const timeout = (key: string, dflt: number) => {
      const node = get(t, key);
      const seconds = num(`timeouts.${key}`, node, dflt);
      if (seconds > MAX_TIMEOUT_SECONDS) fail(`timeouts.${key}`, node, `must be at most ${MAX_TIMEOUT_SECONDS} seconds`);
      return seconds;
    };
    uploadTimeoutSeconds = timeout('upload_seconds', uploadTimeoutSeconds);
    readinessTimeoutSeconds = timeout('readiness_seconds', readinessTimeoutSeconds);
  }

  const providerNode = get(root, 'provider');
  let provider: ProviderName = 'local';
  if (providerNode !== undefined) {
    const v = isScalar(providerNode) ? String(providerNode.value) : '';
    if (!(PROVIDERS as readonly string[]).includes(v)) fail('provider', providerNode, `must be one of ${PROVIDERS.join(', ')}`);
    provider = v as ProviderName;
  }

  let vmCpus = 1;
  let vmBox: string | null = null;
  const vm = get(root, 'vm');
  if (vm !== undefined) {
    if (!isMap(vm)) fail('vm', vm, 'must be a mapping (cpus, box)');
    checkKeys(vm as typeof root, VM_KEYS, 'vm.');
    vmCpus = num('vm.cpus', get(vm as typeof root, 'cpus'), vmCpus);
    const box = get(vm as typeof root, 'box');
    if (box !== undefined) {
      if (!isScalar(box) || typeof box.value !== 'string' || !box.value.trim()) fail('vm.box', box, 'must be a Vagrant box name, e.g. debian/bookworm64');
      vmBox = String((box as { value: unknown }).value).trim();
    }
  }

  const server = parseServer(get(root, 'server'), path.dirname(path.resolve(file)), fail, checkKeys, get);
  const cutsNode = get(root, 'noise_cuts');
  // A list of names, [] or none for no cuts.
  const cutsText = cutsNode === undefined ? null : isSeq(cutsNode) ? cutsNode.items.map((i) => String((i as { value: unknown }).value)).join(',') || 'none'
    : isScalar(cutsNode) ? String(cutsNode.value) : fail('noise_cuts', cutsNode, 'must be a list of names, or none');
  let noiseCuts: NoiseCut[] | undefined;
  try { noiseCuts = cutsText === null ? undefined : parseNoiseCuts(cutsText); } catch (e) { fail('noise_cuts', cutsNode, (e as Error).message); }
  return {
    sizes, memoryLimitsMb, iterations, warmupIterations, uploadTimeoutSeconds, readinessTimeoutSeconds,
    provider, server, vmCpus, vmBox, concurrency, ...(noiseCuts ? { noiseCuts } : {}),
  };
}

/** Uploads at once: a whole number from 1 to MAX_CONCURRENCY. */
export function parseConcurrency(v: string): number {
  const n = parsePositiveInt(v);
  if (n > MAX_CONCURRENCY) throw new Error(`at most ${MAX_CONCURRENCY} uploads at once`);
  return n;
}

function parseServer(
  node: Node | undefined, baseDir: string,
  fail: (key: string, node: Node | null | undefined, why: string) => never,
  checkKeys: (map: any, allowed: string[], prefix: string) => void,
  get: (map: any, key: string) => Node | undefined,
): ServerConfig {
  if (node === undefined) return { kind: 'standin' };
  if (isScalar(node)) {
    if (node.value === 'standin') return { kind: 'standin' };
    return fail('server', node, 'must be "standin" or a mapping with source (and build) or binary');
  }
  if (!isMap(node)) return fail('server', node, 'must be "standin" or a mapping with source (and build) or binary');
  checkKeys(node, SERVER_KEYS, 'server.');
  const str = (key: string) => {
    const n = get(node, key);
    if (n === undefined) return undefined;
    if (!isScalar(n) || typeof n.value !== 'string' || n.value === '') fail(`server.${key}`, n, 'must be a non-empty path');
    return path.resolve(baseDir, String((n as { value: unknown }).value));
  };
  const binary = str('binary');
  const source = str('source');
  if (binary && source) fail('server', node, 'give either binary or source, not both');
  const workdir = str('workdir');
  if (binary) return workdir ? { kind: 'binary', binary, workdir } : { kind: 'binary', binary };
  if (!source) return fail('server', node, 'needs source (a git checkout) or binary');
  if (workdir) fail('server.workdir', get(node, 'workdir'), 'only with server.binary: a server built from source runs in its own tree');
  const buildNode = get(node, 'build');
  let build = DEFAULT_BUILD;
  if (buildNode !== undefined) {
    const items = isSeq(buildNode) ? buildNode.items : [];
    if (items.length === 0 || !items.every((i) => isScalar(i) && String(i.value) !== '')) {
      fail('server.build', buildNode, 'must be a non-empty list of arguments, with {out} for the binary path');
    }
    build = items.map((i) => String((i as { value: unknown }).value));
    if (!build.some((a) => a.includes('{out}'))) fail('server.build', buildNode, 'must contain {out} (where the binary goes)');
  }
  return { kind: 'source', source, build };
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
