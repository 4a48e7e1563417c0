// run-tests' command line: the help text, and argv -> the run's settings
// (matrix.yaml with flags applied, or a run to resume). Every bad value is an
// InputError naming the flag and the value, raised before anything starts.
//   const o = parseOptions(['--quick']); if (o !== 'help') o.matrix.sizes
import path from 'node:path';
import { parseArgs } from 'node:util';
import { argvError } from './argv-errors.ts';
import { BISECT_METRICS, metricByName } from './stats/bisect.ts';
import { readBisectPlan } from './bisect-plan.ts';
import { InputError } from './errors.ts';
import { CONCURRENCY, ITERATIONS, MEMORY_MB } from './bounds.ts';
import { defaultWarmup, loadMatrixFile, parseConcurrency, parseIterations, PROVIDERS, QUICK, repeated, type Matrix, type ProviderName } from './matrix.ts';
import { DEFAULT_FLOOR, parseFloorRange, parseFloorTries, type FloorSettings } from './stats/floor.ts';
import { SUITE_DIR } from './paths.ts';
import { floorRunDirs, readResumeState, type ResumeSide, type ResumeState } from './resume.ts';
import { matrixFromRecord } from './run-record.ts';
import { DEFAULT_LOOKS, DEFAULT_MAX_ROUNDS } from './stats/sequential.ts';
import { DEFAULT_NOISE_CUTS, NOISE_CUTS, parseNoiseCuts } from './noise-cuts.ts';
import { parseShard, planShards, type Shard } from './shard.ts';
import { parseMemoryMb, parsePositiveInt, parseSize, sizeLabel } from './units.ts';

/** Adaptive rounds: the first look needs this many. */
const MIN_ROUNDS = DEFAULT_LOOKS[0];

export const HELP = `Usage: run-tests [options]

Runs every case of the matrix (file sizes x memory limits x uploads at once, each
for its iterations) against
the server under test and writes results/<YYYYMMDD-HHMMSS>/ with raw.csv,
report.md, failures.log and config.json. The last stdout line is that folder.

Options (flags override matrix.yaml):
  --matrix FILE        matrix file (default: matrix.yaml beside this script)
  --provider NAME      where the server runs: local | qemu | vagrant (default: matrix's, else local)
  --sizes LIST         file sizes, e.g. 10MiB,1GiB: whole bytes, 1B to 1TiB, a unit required
                       (B; KiB MiB GiB TiB = 2^10..; KB MB GB TB = 10^3..)
  --memory LIST        memory limits in MB (2^20 bytes, as QEMU -m), 1 to ${MEMORY_MB.max}, e.g. 256,512
  --concurrency LIST   uploads of the same file started together, one case per entry, 1 to ${CONCURRENCY.max},
                       e.g. 1,4 (default: matrix's, else 1)
  --iterations N|auto  iterations per case, at most ${ITERATIONS.max} (default: matrix's, else 5; fewer leave compare-runs
                       unable to call any change significant). auto, the default with two or more
                       --ref or --binary: after the warm-up, interleaved rounds go on per case until
                       the case is decided (faster, slower or same) or --max-iterations is reached,
                       judged only at fixed round counts by a rule recorded in config.json
  --max-iterations N   with auto: the most iterations per case and side, warm-up included (default ${1 + DEFAULT_MAX_ROUNDS})
  --noise PCT          with auto: changes inside +-PCT percent are "same" (default 3)
  --no-pool            with auto: judge each case by its own rule only (default: the matrix-level same of
                       lib/stats/pooled.ts also lets a case stop as same when the pooled change across the cases
                       lies inside +-noise and the case does not stray from it)
  --noise-cuts LIST    done before each measured upload to cut noise: ${NOISE_CUTS.join(', ')},
                       or none (default: matrix's noise_cuts, else ${DEFAULT_NOISE_CUTS.join(',') || 'none'}; recorded in config.json)
  --plan               print the plan (cases, bytes a round, rounds least/expected/most, wall time here,
                       what --shard N makes of it) and exit 0: nothing is built or uploaded

  --out DIR            parent folder of the results folder (default: results/ beside this script)
  --quick              a small matrix: sizes ${QUICK.sizes.join(',')}, memory ${QUICK.memoryLimitsMb.join(',')} MB,
                       ${QUICK.iterations} iterations, stand-in server, local provider (under a minute)
  --ref REF            build the server from this git ref of server.source (default: the current
                       directory's checkout) with server.build, and measure that build; repeat
                       once to compare two refs. WORKTREE = the working tree as it is, uncommitted
                       changes included (recorded as dirty). Without --ref, server.source builds WORKTREE.
                       Repeat for more: every later ref is compared with the first. A..B: A and each
                       first-parent commit after it up to B, as refs (history.md marks where it changed)
  --binary PATH        a prebuilt server binary instead of a ref; repeat to compare binaries as refs are
  --junit FILE         with two or more servers: also write the comparisons' verdicts as JUnit XML, for a
                       CI's test view (failed: slower or failing more; skipped: inconclusive or ignored)
  --seed N             seed of the refs' interleaved order (default: random; recorded in config.json)
  --shard k/N          run only shard k of N (numbered from 1): whole cases (file size x memory limit, every
                       iteration and ref), balanced by bytes x iterations with VM boots counted; ./merge-runs
                       joins the N folders into one run. auto: CIRCLE_NODE_INDEX/CIRCLE_NODE_TOTAL (CircleCI),
                       CI_NODE_INDEX/CI_NODE_TOTAL (GitLab parallel: N), or JOB_COMPLETION_INDEX with
                       UPS_SHARD_TOTAL = the Job's completions (Kubernetes)
  --resume DIR         finish an interrupted run: its recorded matrix, server and knobs (config.json),
                       only the iterations raw.csv lacks, into the same folder (no other flags); a run
                       of several servers from its parent folder, every side together in the seeded order
  --memory-floor       instead of the matrix's limits: per file size (x uploads at once) and server, bisect
                       for the smallest memory limit every try survives (200, verified download, no OOM
                       kill); writes floor.md, floor.json, floor.svg; exit 1 when a later server needs
                       more memory than the first, or a case has no floor in the range. --resume continues
  --floor-range LO..HI with --memory-floor: the limits searched, in MB (default ${DEFAULT_FLOOR.bottomMb}..${DEFAULT_FLOOR.topMb})
  --floor-tries N      with --memory-floor: tries a limit must survive, all of them (default ${DEFAULT_FLOOR.tries})
  --doctor             check this machine for the provider (matrix's or --provider): one ok/FAIL/warn
                       line per check with its fix; exit 0 when the provider can run, 1 when not.
                       Changes nothing; with --fix it may build the guest image and start libvirt's
                       default network (nothing else)
  --build-image        build (or verify) the VM guest image, sized for the matrix's largest file;
                       the last stdout line is its folder
  --self-check         how well this machine tells servers apart: the stand-in against itself (A/A)
                       and against a 10%-slowed stand-in, interleaved and adaptive, at one memory
                       limit; exit 1 when the 10% is not found or the A/A is not quiet
  --bisect GOOD BAD    which commit changed the metric: GOOD and BAD compared first (interleaved, adaptive),
                       then the first-parent commits between them bisected, each midpoint measured
                       interleaved with the range's ends; writes bisect.md, bisect.json, bisect.svg.
                       Exit 0 a culprit named (or no difference to bisect), 1 no single commit
  --metric NAME        with --bisect: throughput (default), duration, processing, server_peak_rss,
                       peak_memory, cpu_per_gib, write_amplification, download, survival
  --no-first-parent    with --bisect or --ref A..B: every commit of the range, inside merges too
  --every N            with --ref A..B: every Nth commit of the range (its ends always)
  -h, --help           this help

Two refs: both are built first (a git worktree per commit, never touching your
working tree; binaries cached by commit), then every case runs both builds in
the same environment boot, iterations alternating in a seeded random order.
Each ref gets an ordinary results folder inside one parent folder, followed by
their comparison (compare-runs: exit 1 when the second ref is slower). Every
iteration starts the server on a fresh data folder: SQLite never shrinks its
file after a delete, so a reused store would carry earlier uploads into later
measurements.

Environment:
  PS_SHARED_SECRET     the server's admin secret (or in .env); a random one is made when unset
  STANDIN_*            fault knobs passed to the stand-in (STANDIN_THROTTLE_MIBS, STANDIN_PROCESSING_DELAY_MS,
                       STANDIN_CRASH_AFTER_BYTES, STANDIN_STATUS, STANDIN_HOLD_IN_MEMORY=1,
                       STANDIN_CORRUPT_STORED=1; the README lists them all)
  UPS_CACHE_DIR        cache for test files, images and built binaries (default ~/.cache/upload-perf-suite)
  UPS_LOCAL_DATA_DIR   local provider: where the server's data folders and upload spool go (default: system temp)
  UPS_LOCAL_NETNS=off  local provider: run a server binary on the host's network instead of a network namespace
                       of its own (PicoShare then listens on every interface while the run lasts)
  UPS_SHARD_TOTAL      --shard auto on a Kubernetes Indexed Job: the Job's completions (the shard count)
  UPS_SELF_STATS=1     print the suite's own RSS, heap and open file descriptors after every iteration (soak runs)

Exit status: 0 run completed (failed cases are results, see failures.log),
1 the suite itself could not run (also: a missing tool, or too little disk space: checked before
anything starts, with the figures), 2 bad input (also: the server rejects the shared secret),
130/143 interrupted (SIGINT/SIGTERM).
`;

export interface Options {
  matrix: Matrix;
  matrixFile: string;
  out: string;
  /** --ref values in order; empty for a run without refs. */
  refs: string[];
  seed: number | null;
  /** --shard: this machine's part of the matrix (lib/shard.ts); null runs it all. */
  shard: Shard | null;
  /** --binary values in order: prebuilt servers compared as refs are; empty without. */
  binaries: string[];
  /** --iterations auto: interleaved rounds until each case is decided (lib/stats/sequential.ts); null for a fixed count. */
  adaptive: { maxRounds: number; noisePct: number; pooled: boolean } | null;
  /** --plan: print the plan and exit 0, nothing built or run. */
  plan: boolean;
  /** --resume: the run folder to finish, as read back. */
  resume: ResumeState | null;
  /** --doctor (with --fix), --build-image, --self-check, --memory-floor or --bisect instead of a run. */
  mode: 'run' | 'doctor' | 'build-image' | 'self-check' | 'memory-floor' | 'bisect';
  /** --memory-floor's search (lib/stats/floor.ts); null otherwise. */
  floor: FloorSettings | null;
  /** --resume of a floor run: its folder per server, in order (lib/floor-run.ts); null otherwise. */
  floorResume: ResumeSide[] | null;
  /** --bisect GOOD BAD (lib/bisect-run.ts); with --resume of a bisection folder, `resume` is that folder. */
  bisect: { good: string; bad: string; metric: string; firstParent: boolean; resume: string | null } | null;
  /** --ref A..B: every Nth commit of the range (1: all); --no-first-parent goes inside merges. */
  range: { every: number; firstParent: boolean };
  fix: boolean;
  /** --junit FILE: the comparisons' verdicts as JUnit XML (two or more servers); null without. */
  junit: string | null;
}

/** Parses argv into the run's settings; every bad value is an InputError naming the flag and the value. */
export function parseOptions(argv: string[]): Options | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        matrix: { type: 'string' }, provider: { type: 'string' }, sizes: { type: 'string' },
        memory: { type: 'string' }, iterations: { type: 'string' }, out: { type: 'string' }, concurrency: { type: 'string' },
        quick: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        ref: { type: 'string', multiple: true }, binary: { type: 'string', multiple: true }, seed: { type: 'string' },
        'max-iterations': { type: 'string' }, noise: { type: 'string' }, junit: { type: 'string' }, 'self-check': { type: 'boolean' }, resume: { type: 'string' }, shard: { type: 'string' },
        doctor: { type: 'boolean' }, fix: { type: 'boolean' }, 'build-image': { type: 'boolean' },
        plan: { type: 'boolean' }, 'noise-cuts': { type: 'string' }, 'no-pool': { type: 'boolean' },
        'memory-floor': { type: 'boolean' }, 'floor-range': { type: 'string' }, 'floor-tries': { type: 'string' },
        bisect: { type: 'string' }, metric: { type: 'string' }, 'no-first-parent': { type: 'boolean' }, every: { type: 'string' },
      },
      strict: true, allowPositionals: true, tokens: true,
    });
  } catch (e) {
    throw argvError(e, argv);
  }
  // parseArgs keeps the last of a repeated flag; a user who wrote two meant both.
  const seen = new Set<string>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option' || t.name === 'ref' || t.name === 'binary') continue;
    if (seen.has(t.name)) throw new InputError(`--${t.name} given twice: give it once${['sizes', 'memory', 'concurrency'].includes(t.name) ? ' (a comma-separated list for several values)' : ''}`);
    seen.add(t.name);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  // --bisect takes two values, GOOD BAD: the second is the one positional argument allowed.
  if (parsed.positionals.length !== (v.bisect !== undefined ? 1 : 0)) {
    throw new InputError(v.bisect !== undefined ? '--bisect takes two refs: --bisect GOOD BAD' : `unexpected argument "${parsed.positionals[0]}"`);
  }
  if (v.metric !== undefined && v.bisect === undefined) throw new InputError('--metric goes with --bisect');
  if (v.metric !== undefined && !metricByName(v.metric)) {
    throw new InputError(`--metric: unknown metric "${v.metric}" (one of ${BISECT_METRICS.map((x) => x.name).join(', ')})`);
  }
  if (v.bisect !== undefined && (v.ref !== undefined || v.binary !== undefined)) throw new InputError('--bisect and --ref/--binary: give one of them');
  if (v.fix && !v.doctor) throw new InputError('--fix goes with --doctor');
  if (v.doctor && v['build-image']) throw new InputError('--doctor and --build-image: give one of them');
  if (v.resume !== undefined && v.resume.trim() === '') throw new InputError('--resume: empty folder name (give the results folder to finish)');
  const floorDirs = v.resume === undefined ? null : floorRunDirs(path.resolve(v.resume));
  if (floorDirs) return floorResumeOptions(floorDirs, Object.keys(v).filter((k) => k !== 'resume'));
  if (v.resume !== undefined) return resumeOptions(v.resume, Object.keys(v).filter((k) => k !== 'resume'));
  const matrixFile = path.resolve(v.matrix ?? path.join(SUITE_DIR, 'matrix.yaml'));
  const matrix = loadMatrixFile(matrixFile);
  const flag = <T,>(name: string, value: string, parse: (s: string) => T): T => {
    try { return parse(value); } catch (e) { throw new InputError(`--${name}: ${(e as Error).message} (got "${value}")`); }
  };
  /** A comma-separated list; `key` tells entries apart (1MiB and 1048576B are one size), none may repeat. */
  const list = <T,>(name: string, value: string, parse: (s: string) => T, key: (x: T) => number): T[] => {
    const items = value.split(',').map((s) => s.trim()).filter(Boolean);
    if (items.length === 0) throw new InputError(`--${name}: empty list (got "${value}")`);
    const parsed = items.map((s) => flag(name, s, parse));
    const i = repeated(parsed.map(key));
    if (i !== null) throw new InputError(`--${name}: ${items[i]} is the same as an earlier entry: give each once (got "${value}")`);
    return parsed;
  };
  if (v.quick) {
    matrix.sizes = QUICK.sizes.map((s) => ({ label: s, bytes: parseSize(s) }));
    matrix.memoryLimitsMb = [...QUICK.memoryLimitsMb];
    matrix.iterations = QUICK.iterations;
    matrix.warmupIterations = defaultWarmup(QUICK.iterations);
    matrix.server = { kind: 'standin' };
    matrix.provider = 'local'; // --provider, below, still picks another
  }
  if (v.sizes !== undefined) matrix.sizes = list('sizes', v.sizes, (s) => ({ label: sizeLabel(s), bytes: parseSize(s) }), (x) => x.bytes);
  if (v.memory !== undefined) matrix.memoryLimitsMb = list('memory', v.memory, parseMemoryMb, (x) => x);
  if (v.concurrency !== undefined) matrix.concurrency = list('concurrency', v.concurrency, parseConcurrency, (x) => x);
  if (v.iterations !== undefined && v.iterations.trim() !== 'auto') {
    matrix.iterations = flag('iterations', v.iterations, parseIterations);
    // The matrix's warm-up stands while it leaves something to measure (a smoke run of 1 has none).
    if (matrix.warmupIterations >= matrix.iterations) matrix.warmupIterations = defaultWarmup(matrix.iterations);
  }
  if (v.provider !== undefined) {
    if (!(PROVIDERS as readonly string[]).includes(v.provider)) {
      throw new InputError(`--provider: must be one of ${PROVIDERS.join(', ')} (got "${v.provider}")`);
    }
    matrix.provider = v.provider as ProviderName;
  }
  const refs = v.ref ?? [];
  if (refs.some((r) => r.trim() === '')) throw new InputError('--ref: empty ref');
  const binaries = (v.binary ?? []).map((b) => path.resolve(b));
  if (binaries.length && refs.length) throw new InputError('--binary and --ref: give one kind of server to compare');
  if (v.binary?.some((b) => b.trim() === '')) throw new InputError('--binary: empty path');
  const sides = v.bisect !== undefined ? 3 : Math.max(refs.length, binaries.length) + refs.filter((r) => r.includes('..')).length;
  const floor = floorOptions(v, matrix, flag);
  // Two or more servers are compared in adaptive rounds unless a fixed --iterations is given.
  const auto = !floor && (v.iterations === undefined ? sides >= 2 : v.iterations.trim() === 'auto');
  if (auto && sides < 2) throw new InputError('--iterations auto: needs two or more --ref or --binary to compare');
  if (!auto && (v['max-iterations'] !== undefined || v.noise !== undefined || v['no-pool'])) {
    throw new InputError(`--${v['max-iterations'] !== undefined ? 'max-iterations' : v.noise !== undefined ? 'noise' : 'no-pool'} goes with --iterations auto (the default with two or more --ref or --binary)`);
  }
  let adaptive: Options['adaptive'] = null;
  if (auto) {
    const warmup = matrix.warmupIterations || 1;
    const max = v['max-iterations'] === undefined ? warmup + DEFAULT_MAX_ROUNDS : flag('max-iterations', v['max-iterations'], parsePositiveInt);
    if (max > ITERATIONS.max || max < warmup + MIN_ROUNDS) {
      throw new InputError(`--max-iterations: from ${warmup + MIN_ROUNDS} (warm-up ${warmup} + ${MIN_ROUNDS} rounds, the first look) to ${ITERATIONS.max} (got "${v['max-iterations']}")`);
    }
    const noisePct = v.noise === undefined ? 3 : flag('noise', v.noise, (s) => {
      const n = Number(s);
      if (s.trim() === '' || !(n > 0 && n < 50)) throw new Error('a percentage above 0 and below 50');
      return n;
    });
    adaptive = { maxRounds: max - warmup, noisePct, pooled: !v['no-pool'] };
    matrix.warmupIterations = warmup;
    matrix.iterations = max; // the most any case runs; a decided case stops early
  }
  if (v['noise-cuts'] !== undefined) matrix.noiseCuts = flag('noise-cuts', v['noise-cuts'], parseNoiseCuts);
  const seed = v.seed === undefined ? null : flag('seed', v.seed, (s) => {
    if (!/^\d+$/.test(s.trim()) || Number(s) > 2 ** 32 - 1) throw new Error('not a whole number from 0 to 4294967295');
    return Number(s);
  });
  // An empty --out resolved to the current directory and put a results folder there.
  if (v.out !== undefined && v.out.trim() === '') throw new InputError('--out: empty folder name (give a folder, e.g. --out results)');
  const shard = v.shard === undefined ? null : parseShard(v.shard, process.env);
  if (shard) planShards(matrix, shard.total, refs.length); // more shards than cases: refused before anything starts
  const mode = v.doctor ? 'doctor' : v['build-image'] ? 'build-image' : v['self-check'] ? 'self-check' : floor ? 'memory-floor' : v.bisect !== undefined ? 'bisect' : 'run';
  const every = v.every === undefined ? 1 : flag('every', v.every, parsePositiveInt);
  if (v.every !== undefined && !refs.some((r) => r.includes('..'))) throw new InputError('--every goes with --ref A..B');
  const bisect = v.bisect === undefined ? null
    : { good: v.bisect, bad: parsed.positionals[0], metric: v.metric ?? 'throughput', firstParent: !v['no-first-parent'], resume: null };
  if (v.junit !== undefined && (v.junit.trim() === '' || sides < 2)) {
    throw new InputError(v.junit.trim() === '' ? '--junit: give a file name' : '--junit: needs two or more --ref or --binary (a comparison to report)');
  }
  return {
    matrix, matrixFile, out: path.resolve(v.out ?? path.join(SUITE_DIR, 'results')), refs, binaries, adaptive, seed, shard,
    resume: null, mode, fix: v.fix ?? false, junit: v.junit === undefined ? null : path.resolve(v.junit), plan: v.plan ?? false, floor, floorResume: null,
    bisect, range: { every, firstParent: !v['no-first-parent'] },
  };
}

/** --memory-floor's settings; its flags alone, or with flags that choose limits or iterations, are refused. Each try is one iteration. */
function floorOptions(v: Record<string, unknown>, matrix: Matrix, flag: <T>(name: string, value: string, parse: (s: string) => T) => T): FloorSettings | null {
  if (!v['memory-floor']) {
    const stray = ['floor-range', 'floor-tries'].find((k) => v[k] !== undefined);
    if (stray) throw new InputError(`--${stray} goes with --memory-floor`);
    return null;
  }
  const clash = ['iterations', 'max-iterations', 'noise', 'shard', 'self-check'].find((k) => v[k] !== undefined);
  if (clash) throw new InputError(`--memory-floor and --${clash}: the search decides the limits and tries (--floor-range, --floor-tries)`);
  const range = v['floor-range'] === undefined ? DEFAULT_FLOOR : flag('floor-range', v['floor-range'] as string, parseFloorRange);
  const tries = v['floor-tries'] === undefined ? DEFAULT_FLOOR.tries : flag('floor-tries', v['floor-tries'] as string, parseFloorTries);
  matrix.iterations = tries;
  matrix.warmupIterations = 0; // every try counts: a warm-up that failed would still be a failure to survive
  return { bottomMb: range.bottomMb, topMb: range.topMb, tries };
}

/** --resume of a floor run: its recorded settings, servers and matrix (the first server's config.json). */
function floorResumeOptions(dirs: string[], otherFlags: string[]): Options {
  if (otherFlags.length > 0) throw new InputError(`--resume takes the run's recorded settings; drop ${otherFlags.map((f) => `--${f}`).join(', ')}`);
  // Each server's folder of a floor run is a run of its own (no ab): its one side.
  const states = dirs.map((d) => readResumeState(d).sides[0]);
  const record = states[0].record;
  const f = record.floor!;
  return {
    matrix: matrixFromRecord(record, path.join(dirs[0], 'config.json')), matrixFile: record.matrix_file, out: path.dirname(f.parent ?? dirs[0]),
    refs: [], binaries: [], adaptive: null, seed: null, shard: null, resume: null, mode: 'memory-floor', fix: false, junit: null, plan: false, bisect: null, range: { every: 1, firstParent: true },
    floor: { bottomMb: f.bottom_mb, topMb: f.top_mb, tries: f.tries }, floorResume: states,
  };
}

/** --resume DIR: everything comes from the run's config.json; other flags would change what the rows mean. */
function resumeOptions(dir: string, otherFlags: string[]): Options {
  if (otherFlags.length > 0) {
    throw new InputError(`--resume takes the run's recorded settings; drop ${otherFlags.map((f) => `--${f}`).join(', ')}`);
  }
  // A bisection's folder: its plan holds the command it was started with (lib/bisect-run.ts).
  const plan = readBisectPlan(path.resolve(dir));
  if (plan) {
    process.chdir(plan.cwd); // the command's relative paths (--matrix, the checkout) mean what they meant then
    const o = parseOptions(plan.argv);
    if (o === 'help' || !o.bisect) throw new InputError(`--resume: ${dir} has a bisection plan without --bisect`);
    return { ...o, bisect: { ...o.bisect, resume: path.resolve(dir) } };
  }
  const state = readResumeState(path.resolve(dir));
  const first = state.sides[0].record;
  const matrix = matrixFromRecord(first, path.join(state.sides[0].dir, 'config.json'));
  // The servers as recorded: each side's ref (built again, from the cache when unchanged) or binary, in the order given.
  const refs = state.sides.flatMap((s) => (s.record.server.kind === 'source' && s.record.server.build?.ref ? [s.record.server.build.ref] : []));
  const binaries = state.parent && first.server.kind === 'binary' ? state.sides.map((s) => s.record.server.path!) : [];
  // A shard resumes as the same shard: its recorded k/N, cut by the same rule.
  const s = first.shard;
  return {
    matrix, matrixFile: first.matrix_file, out: path.dirname(state.dir),
    refs, binaries, adaptive: null, seed: first.ab?.seed ?? null, shard: s ? { index: s.index, total: s.total, source: 'resumed' } : null,
    resume: state, mode: 'run', fix: false, junit: null, plan: false, floor: null, floorResume: null, bisect: null, range: { every: 1, firstParent: true },
  };
}
