// ./merge-runs: the folders of `run-tests --shard k/N` put together into one
// ordinary results folder, or one A/B parent with a folder per ref, as if the
// matrix had run on one machine; each case's rows still come from the one
// shard that ran it. Shards that do not belong together are refused (exit 2):
// other splits, another suite version, matrix, refs or commits, overlapping or
// missing cases (--allow-missing merges without the missing ones, and says which).
// mergeShards and renderShardsSection are pure; readShard and writeMerged do the files.
//   const merged = mergeShards(args.map(readShard), { allowMissing: false })
//   await writeMerged(merged, 'results/merged')
import fs from 'node:fs';
import path from 'node:path';
import { caseKey, caseLabel, matrixCases, parseCaseKey } from './cases.ts';
import { InputError } from './errors.ts';
import type { HostFingerprint } from './providers/host.ts';
import { readRawText, readRunRecord } from './load-run.ts';
import { writeReportFiles } from './report-files.ts';
import {
  appendCanaryRow, appendSamples, parseCanaryCsv, parseRawCsv, parseSamplesCsv, rawCsvHeader, rawCsvLine, writeConfig, type CanaryRow, type RawRow, type SampleRow,
} from './results.ts';
import type { RunRecord } from './run-record.ts';
import { formatBytes } from './units.ts';

/** One ref's folder of a shard (the shard's only folder when it ran one server). */
export interface ShardSide {
  /** Folder name inside an A/B parent; '' for a plain run. */
  folder: string;
  dir: string;
  config: RunRecord;
  rows: RawRow[];
  /** A torn last row of an unfinished shard, left out (lib/load-run.ts readRawText). */
  warnings: string[];
  failuresLog: string;
  /** The machine canary's timings (canary.csv), each shard's on its own host. */
  canary: CanaryRow[];
  /** The memory timeline (samples.csv) of the shard's iterations. */
  samples: SampleRow[];
}

export interface ShardRun {
  /** The folder as given on the command line. */
  given: string;
  sides: ShardSide[];
}

/** Files the merge writes itself: the data merged, the report and its charts drawn anew from it. */
const KNOWN_FILES = new Set(['raw.csv', 'config.json', 'report.md', 'failures.log', 'throughput.svg', 'canary.csv', 'canary.svg', 'samples.csv', 'run.lock']);
const isKnown = (name: string) => KNOWN_FILES.has(name) || /^memory-\d+MB\.svg$/.test(name);

/**
 * A shard as given: its results folder, its A/B parent (a folder per ref and compare/), or the --out folder
 * holding exactly one of those (as a CI artifact of `--out results/shard-2` unpacks).
 */
export function readShard(given: string): ShardRun {
  const at = (dir: string, depth: number): ShardRun => {
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new InputError(`${given}: no such folder`);
    const own = readConfig(dir);
    if (own?.ab) throw new InputError(`${dir}: one ref's folder of a two-ref run; give its parent folder ${path.dirname(dir)}`);
    if (own) return { given, sides: [readSide(dir, '', own)] };
    const subdirs = fs.readdirSync(dir).filter((n) => fs.statSync(path.join(dir, n)).isDirectory()).sort();
    const abSides = subdirs.map((n) => ({ n, c: readConfig(path.join(dir, n)) })).filter((x) => x.c?.ab);
    if (abSides.length > 0) {
      abSides.sort((a, b) => (a.c!.ab!.this_ref ?? 0) - (b.c!.ab!.this_ref ?? 0));
      return { given, sides: abSides.map((x) => readSide(path.join(dir, x.n), x.n, x.c!)) };
    }
    const runs = subdirs.filter((n) => readConfig(path.join(dir, n)) || fs.readdirSync(path.join(dir, n)).some((m) => readConfig(path.join(dir, n, m))?.ab));
    if (depth === 0 && runs.length === 1) return at(path.join(dir, runs[0]), 1);
    if (runs.length > 1) throw new InputError(`${given}: holds ${runs.length} runs (${runs.join(', ')}): give the one that is the shard`);
    throw new InputError(`${given}: not a results folder of run-tests (no config.json, no folder per ref)`);
  };
  return at(given, 0);
}

const readConfig = readRunRecord;

function readSide(dir: string, folder: string, config: RunRecord): ShardSide {
  const csv = path.join(dir, 'raw.csv');
  const { text, warnings } = fs.existsSync(csv) ? readRawText(csv, config) : { text: '', warnings: [] };
  // A shard stopped before its first row has a header only, or no raw.csv at all.
  const rows = text.split('\n').filter(Boolean).length > 1 ? parseRawCsv(text, csv) : [];
  const log = path.join(dir, 'failures.log');
  const canary = path.join(dir, 'canary.csv');
  const samples = path.join(dir, 'samples.csv');
  return {
    folder, dir, config, rows, warnings, failuresLog: fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '',
    canary: fs.existsSync(canary) ? parseCanaryCsv(fs.readFileSync(canary, 'utf8'), canary) : [],
    samples: fs.existsSync(samples) ? parseSamplesCsv(fs.readFileSync(samples, 'utf8'), samples) : [],
  };
}

export interface MergedSide {
  folder: string;
  config: RunRecord;
  rows: RawRow[];
  failuresLog: string;
  /** The machine canary's timings (canary.csv), each shard's on its own host. */
  canary: CanaryRow[];
  /** The memory timeline (samples.csv) of the shard's iterations. */
  samples: SampleRow[];
  /** Shard folders whose extra folders (besides the known files) are copied into the merged one. */
  sourceDirs: string[];
}

export interface ShardSummary {
  index: number;
  dir: string;
  source: string;
  cases: string[];
  rows: number;
  started_at: string | null;
  ended_at: string | null;
  finished: boolean;
  stop_reason: string | null;
  seed: number | null;
  host: Partial<HostFingerprint>;
  provider_facts: Record<string, Record<string, unknown>>;
}

export type MergeInfo = {
  total: number;
  rule: string;
  shards: ShardSummary[];
  missing_shards: number[];
  /** Cases (labels, e.g. 5GiB @ 2048MB) with fewer rows than the matrix's iterations, with what is missing. */
  missing_cases: string[];
  hosts_differ: boolean;
};

export interface Merged {
  ab: boolean;
  sides: MergedSide[];
  merge: MergeInfo;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const label = (s: ShardRun) => `shard ${s.sides[0].config.shard!.index}/${s.sides[0].config.shard!.total} (${s.given})`;

/** Checks that the shards belong together and merges them; every refusal is an InputError naming the shards. */
export function mergeShards(shards: ShardRun[], opts: { allowMissing: boolean }): Merged {
  if (shards.length === 0) throw new InputError('no shard folders given');
  for (const s of shards) {
    for (const side of s.sides) {
      if (!side.config.shard) throw new InputError(`${side.dir}: not a shard (its run had no --shard): nothing to merge it with`);
    }
  }
  shards = [...shards].sort((a, b) => a.sides[0].config.shard!.index - b.sides[0].config.shard!.index);
  const [first] = shards;
  const c0 = first.sides[0].config;
  const total = c0.shard!.total;
  for (const s of shards.slice(1)) {
    const c = s.sides[0].config;
    if (c.shard!.total !== total) throw new InputError(`${label(first)} and ${label(s)} are parts of different splits (${total} and ${c.shard!.total} shards)`);
    const twice = shards.find((o) => o !== s && o.sides[0].config.shard!.index === c.shard!.index);
    if (twice) throw new InputError(`shard ${c.shard!.index}/${total} given twice: ${twice.given} and ${s.given}`);
    if (!same(c.suite_version, c0.suite_version) || !same(c.suite_git?.commit, c0.suite_git?.commit)) {
      throw new InputError(`${label(s)} ran another suite version than ${label(first)}: ${suiteOf(c)} vs ${suiteOf(c0)}`);
    }
    if (c.shard!.rule !== c0.shard!.rule) throw new InputError(`${label(s)} was cut by another assignment rule than ${label(first)}: another suite version`);
    // The merged comparison judges every case by one stopping rule: the shards must have stopped by the same one.
    if (!same(c.ab?.stopping_rule ?? null, c0.ab?.stopping_rule ?? null)) {
      throw new InputError(`${label(s)} stopped its cases by another rule than ${label(first)}: ${differs('stopping rule', c0.ab?.stopping_rule ?? null, c.ab?.stopping_rule ?? null)}`);
    }
    for (const key of ['provider', 'matrix'] as const) {
      if (!same(c[key], c0[key])) {
        throw new InputError(`${label(s)} ran another matrix than ${label(first)}: ${differs(key, c0[key], c[key])}`);
      }
    }
    if (s.sides.length !== first.sides.length || !same(c.ab?.refs, c0.ab?.refs)) {
      throw new InputError(`${label(s)} ran other refs than ${label(first)}: ${refsOf(s)} vs ${refsOf(first)}`);
    }
    s.sides.forEach((side, i) => {
      const a = serverOf(first.sides[i].config);
      const b = serverOf(side.config);
      if (a !== b || side.folder !== first.sides[i].folder) {
        throw new InputError(`${label(s)} ran other refs or commits than ${label(first)}: ${side.folder || 'server'} ${b} vs ${a}`);
      }
    });
  }

  // Cases: each shard's rows must lie in the cases it was assigned, and no case may come from two shards.
  const matrix = c0.matrix ?? {};
  const caseLabel = caseLabeller(matrix.sizes ?? []);
  const owner = new Map<string, ShardRun>();
  for (const s of shards) {
    const mine = new Set(s.sides[0].config.shard!.cases);
    for (const side of s.sides) {
      for (const r of side.rows) {
        const k = caseKey(r);
        if (!mine.has(k)) throw new InputError(`${label(s)} has rows for ${caseLabel(k)}, a case shard ${s.sides[0].config.shard!.index}/${total} was not assigned`);
      }
    }
    for (const k of mine) {
      const other = owner.get(k);
      if (other) throw new InputError(`overlapping cases: ${caseLabel(k)} is in both ${label(other)} and ${label(s)}`);
      owner.set(k, s);
    }
  }
  const allCases = matrixCases({ sizes: matrix.sizes ?? [], memoryLimitsMb: matrix.memory_limits_mb ?? [], concurrency: matrix.concurrency ?? [1] }).map(caseKey);
  const given = new Set(shards.map((s) => s.sides[0].config.shard!.index));
  const missingShards = Array.from({ length: total }, (_, i) => i + 1).filter((k) => !given.has(k));
  const missing: string[] = [];
  for (const k of allCases) {
    const s = owner.get(k);
    if (!s) { missing.push(`${caseLabel(k)} (shard not given)`); continue; }
    s.sides.forEach((side) => {
      const n = side.rows.filter((r) => caseKey(r) === k).length;
      // Adaptive rounds: a case decided (or capped) early is whole with fewer rows than planned.
      const stopped = side.config.ab?.stops?.some((x) => x.case === k) ?? false;
      if (!stopped && n < (matrix.iterations ?? 0)) missing.push(`${caseLabel(k)}${side.folder ? ` of ${side.folder}` : ''}: ${n} of ${matrix.iterations} iterations (${label(s)} did not finish: ${side.config.stop_reason ?? 'no reason recorded'})`);
    });
  }
  if (missing.length > 0 && !opts.allowMissing) {
    const what = missingShards.length ? `missing shard${missingShards.length > 1 ? 's' : ''} ${missingShards.map((k) => `${k}/${total}`).join(', ')}; ` : '';
    throw new InputError(`${what}missing cases: ${missing.join('; ')}. Give every shard, or --allow-missing to merge without them`);
  }

  const summaries: ShardSummary[] = shards.map((s) => ({
    index: s.sides[0].config.shard!.index, dir: s.given, source: s.sides[0].config.shard!.source,
    cases: s.sides[0].config.shard!.cases.map(caseLabel), rows: s.sides.reduce((t, x) => t + x.rows.length, 0),
    started_at: s.sides[0].config.started_at ?? null, ended_at: s.sides[0].config.ended_at ?? null,
    finished: s.sides.every((x) => x.config.finished === true), stop_reason: s.sides[0].config.stop_reason ?? null,
    seed: s.sides[0].config.ab?.seed ?? null, host: s.sides[0].config.host ?? {}, provider_facts: s.sides[0].config.provider_facts ?? {},
  }));
  const hostKey = (h: Partial<HostFingerprint>) => JSON.stringify([h.hostname, h.cpu_model, h.cores, h.kernel, h.memory_bytes, h.machine]);
  const merge: MergeInfo = {
    total, rule: c0.shard!.rule, shards: summaries, missing_shards: missingShards, missing_cases: missing,
    hosts_differ: new Set(summaries.map((x) => hostKey(x.host))).size > 1,
  };
  const times = (xs: (string | null | undefined)[]) => xs.filter((x): x is string => typeof x === 'string').sort();
  const sides = first.sides.map((side0, i): MergedSide => {
    const parts = shards.map((s) => s.sides[i]);
    const { shard: _shard, ...base } = side0.config;
    const unfinished = parts.find((p) => p.config.finished !== true);
    const facts: Record<string, Record<string, unknown>> = {};
    for (const p of parts) for (const [mem, f] of Object.entries(p.config.provider_facts ?? {})) facts[mem] ??= f;
    return {
      folder: side0.folder,
      config: {
        ...base,
        started_at: times(parts.map((p) => p.config.started_at))[0] ?? '',
        ended_at: times(parts.map((p) => p.config.ended_at)).at(-1) ?? null,
        finished: missing.length === 0 && !unfinished,
        stop_reason: missing.length > 0 ? `merged without ${missing.length} case(s): ${missing.join('; ')}` : unfinished ? unfinished.config.stop_reason ?? null : null,
        provider_facts: facts,
        // Each shard's adaptive stops belong to its own cases: together they are the run's.
        ...(side0.config.ab ? { ab: { ...side0.config.ab, seed: null, parent: '', ...(side0.config.ab.stops ? { stops: parts.flatMap((p) => p.config.ab?.stops ?? []) } : {}) } } : {}),
        merge,
      },
      rows: parts.flatMap((p) => p.rows).sort((a, b) =>
        b.memory_limit_mb - a.memory_limit_mb || b.file_size_bytes - a.file_size_bytes || a.iteration - b.iteration),
      failuresLog: parts.map((p) => p.failuresLog).join(''),
      canary: parts.flatMap((p) => p.canary).sort((a, b) => a.at.localeCompare(b.at)),
      samples: parts.flatMap((p) => p.samples),
      sourceDirs: parts.map((p) => p.dir),
    };
  });
  return { ab: first.sides.length > 1, sides, merge };
}

function suiteOf(c: RunRecord): string {
  return `${c.suite_version ?? 'unknown version'} at ${c.suite_git?.commit?.slice(0, 12) ?? 'unknown commit'}`;
}

function refsOf(s: ShardRun): string {
  return s.sides[0].config.ab?.refs?.join(' and ') ?? `one server (${serverOf(s.sides[0].config)})`;
}

/** The server's identity: its commit for a build, else its kind with path or knobs (a checkout's path differs between runners). */
function serverOf(c: RunRecord): string {
  const s = c.server ?? {};
  if (s.git?.commit) return `commit ${s.git.commit.slice(0, 12)}${s.git.dirty ? ' (dirty)' : ''}`;
  return `${s.kind ?? 'unknown'}${s.path ? ` ${s.path}` : ''}${s.standin_env && Object.keys(s.standin_env).length ? ` ${JSON.stringify(s.standin_env)}` : ''}`;
}

/** The first differing field of two values, e.g. `matrix.iterations 5 vs 3`. */
function differs(key: string, a: unknown, b: unknown): string {
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const x = (a as Record<string, unknown>)[k];
      const y = (b as Record<string, unknown>)[k];
      if (!same(x, y)) return differs(`${key}.${k}`, x, y);
    }
  }
  return `${key} ${JSON.stringify(b)} vs ${JSON.stringify(a)}`;
}

function caseLabeller(sizes: { label: string; bytes: number }[]): (k: string) => string {
  return (k) => {
    const c = parseCaseKey(k);
    return c ? caseLabel(sizes.find((s) => s.bytes === c.bytes)?.label ?? `${c.bytes} B`, c) : k;
  };
}

/** report.md's section on the shards: who ran what, and the hosts' fingerprints side by side when they differ. */
export function renderShardsSection(m: MergeInfo): string {
  const lines = ['', '## Shards', '',
    `Merged from ${m.shards.length} of ${m.total} shards (\`--shard k/${m.total}\`). Every case (all its iterations, warm-up and refs) ran whole in one shard, so each comparison stays on one machine.`,
    '', '| shard | cases | rows | host | started | ended | finished |', '|---|---|---|---|---|---|---|'];
  for (const s of m.shards) {
    lines.push(`| ${s.index}/${m.total} | ${s.cases.join(', ')} | ${s.rows} | ${s.host.hostname ?? '?'} | ${s.started_at ?? '–'} | ${s.ended_at ?? '–'} | ${s.finished ? 'yes' : `no: ${s.stop_reason ?? '?'}`} |`);
  }
  if (m.missing_cases.length > 0) {
    lines.push('', `> **Missing** (merged with --allow-missing${m.missing_shards.length ? `; shards not given: ${m.missing_shards.map((k) => `${k}/${m.total}`).join(', ')}` : ''}):`, '');
    for (const c of m.missing_cases) lines.push(`> - ${c}`);
  }
  if (m.hosts_differ) {
    const hosts = new Set(m.shards.map((s) => s.host.hostname)).size;
    lines.push('', `> **Different hosts**: the shards ran on ${hosts === 1 ? 'differing machines' : `${hosts} hosts`}. Each case's rows come from one host, ` +
      'but figures of cases from different shards were measured on different machines: compare a case with itself (refs, runs), not with its neighbours.', '');
    const row = (name: string, f: (s: ShardSummary) => string) => `| ${name} | ${m.shards.map(f).join(' | ')} |`;
    const facts = (s: ShardSummary) => Object.entries(s.provider_facts)
      .map(([mem, f]) => `${mem} MB: ${['accel', 'limitEnforced', 'kernel'].filter((k) => k in f).map((k) => `${k}=${String(f[k])}`).join(' ') || '–'}`).join('; ') || '–';
    lines.push(`| | ${m.shards.map((s) => `shard ${s.index}`).join(' | ')} |`, `|---|${m.shards.map(() => '---|').join('')}`,
      row('host', (s) => s.host.hostname ?? '?'),
      row('CPU', (s) => s.host.cpu_model ?? '?'),
      row('cores', (s) => String(s.host.cores ?? '?')),
      row('memory', (s) => (s.host.memory_bytes ? formatBytes(s.host.memory_bytes) : '?')),
      row('kernel', (s) => s.host.kernel ?? '?'),
      row('machine', (s) => s.host.machine ?? '–'),
      row('hypervisor', (s) => (s.host.hypervisor === undefined || s.host.hypervisor === null ? '?' : s.host.hypervisor ? 'yes' : 'no')),
      row('CI', (s) => Object.entries(s.host.ci ?? {}).map(([k, v]) => `${k}=${v}`).join(', ') || '–'),
      row('environments', facts));
  }
  return lines.join('\n') + '\n';
}

/** Writes one merged folder per side into `out` (out itself for a plain run); returns their paths. */
export async function writeMerged(m: Merged, out: string): Promise<string[]> {
  const dirs: string[] = [];
  for (const side of m.sides) {
    const dir = side.folder ? path.join(out, side.folder) : out;
    fs.mkdirSync(dir, { recursive: true });
    if (side.config.ab) side.config.ab.parent = out;
    for (const src of side.sourceDirs) copyExtras(src, dir);
    fs.writeFileSync(path.join(dir, 'raw.csv'), rawCsvHeader() + side.rows.map(rawCsvLine).join(''));
    fs.writeFileSync(path.join(dir, 'failures.log'), side.failuresLog);
    for (const c of side.canary) appendCanaryRow(dir, c);
    if (side.samples.length) appendSamples(dir, side.samples);
    writeConfig(dir, side.config);
    await writeReportFiles(dir, side.rows, side.config);
    fs.appendFileSync(path.join(dir, 'report.md'), renderShardsSection(m.merge));
    dirs.push(dir);
  }
  return dirs;
}

/** Folders a shard wrote besides the known files (per-iteration samples, say), merged; a name two shards both wrote is refused. */
function copyExtras(src: string, dst: string): void {
  for (const name of fs.readdirSync(src)) {
    if (isKnown(name) || name.endsWith('.tmp')) continue;
    const from = path.join(src, name);
    const to = path.join(dst, name);
    if (fs.statSync(from).isDirectory()) {
      fs.mkdirSync(to, { recursive: true });
      copyExtras(from, to);
    } else {
      if (fs.existsSync(to)) throw new InputError(`${from}: another shard also wrote ${path.relative(dst, to) || name}; cannot merge both`);
      fs.copyFileSync(from, to);
    }
  }
}
