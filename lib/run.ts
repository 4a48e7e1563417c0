// The steps of a run, in the order run-tests.mts calls them: check the host,
// prepare servers, test files and the guest image, open the results folders
// (one per side: a ref, or the one server), plan the jobs, run them through
// the matrix loop (lib/runner.ts), and close: config.json, report.md, the
// folder's path on stdout.
//
//   preflight(m); const sides = await prepareServers(m, refs, progress)
//   const run = openRun({ ... }); await executeRun(run, provider, ctx); finishRun(run, out)
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import dotenv from 'dotenv';
import { $ } from 'zx';
import { cpuCanarySeconds, runCanary } from './canary.ts';
import { median } from './stats/stats.ts';
import { closeClient } from './client.ts';
import type { ComparedRun } from './comparison.ts';
import { checkDiskSpace, diskPlanFor } from './diskspace.ts';
import { AdaptiveRounds } from './stats/adaptive.ts';
import { caseKey, caseRunLabel, ruleRow } from './cases.ts';
import { newRow } from './row.ts';
import { InputError } from './errors.ts';
import { historyChartSvg } from './render/charts.ts';
import { historyOf, renderHistory } from './render/history.ts';
import { FailFast, failFastMessage, ServerNeverReady } from './failfast.ts';
import { hostFingerprint } from './providers/host.ts';
import { ensureGuestImage, imageBytesFor, type GuestImage } from './providers/image.ts';
import { interleave, roundsInTurn, type Job } from './stats/interleave.ts';
import { profileFromRun, profileKey, readMachineProfile, writeMachineProfile } from './machine-profile.ts';
import { DEFAULT_NOISE_CUTS } from './noise-cuts.ts';
import { DEFAULT_PROFILE, duration, makePlan, nextProfile, timeLeft, type PlanRecord } from './stats/plan.ts';
import { pooledConfidence, pooledRule, type PooledRule } from './stats/pooled.ts';
import { AuthRejected, runIteration, type IterationOutcome } from './iteration.ts';
import { LocalProvider } from './providers/local.ts';
import { DEFAULT_BUILD, expandCases, type Case, type Matrix } from './matrix.ts';
import { unlockRunDir } from './lock.ts';
import { localDataParent, localDataParentProblem, SUITE_DIR } from './paths.ts';
import type { Progress } from './progress.ts';
import type { Provider, ProviderContext, ServerSpec } from './providers/provider.ts';
import { QemuProvider } from './providers/qemu.ts';
import { buildRefs, WORKTREE_REF } from './refs.ts';
import { writeReportFiles } from './report-files.ts';
import { appendCanaryRow, appendFailure, appendRawRow, appendSamples, createRunDir, writeConfig, writeFileAtomic, type RawRow } from './results.ts';
import { mergeResumedRecord, planResume, type ResumePlan, type ResumeState } from './resume.ts';
import { matrixRecord, newRunRecord, transitions, type GitRecord, type RunRecord, type ServerRecord } from './run-record.ts';
import { MAX_REPLACEMENTS, runMatrix } from './runner.ts';
import { stoppingRule, type StoppingRule } from './stats/sequential.ts';
import { formatSelfStats, selfStats } from './selfstats.ts';
import { planShards, shardCases, shardRecord, type Shard } from './shard.ts';
import { cachedStandinBundle } from './standin/standin-bundle.ts';
import { standinKnobsFrom } from './standin/standin-knobs.ts';
import { secretWarning } from './secret.ts';
import { ensureTestFile, type TestFile } from './testfiles.ts';
import { MiB } from './units.ts';
import { PROVIDER_TOOLS, requireTools } from './tools.ts';
import { configuredBox, VagrantProvider } from './providers/vagrant.ts';

/** One server under test: what launches it, and what config.json records about it. Two or more for a run of refs. */
export interface Side { name: string; spec: ServerSpec; record: ServerRecord }

/** One side's results folder: its rows so far and its record (config.json). */
export interface SideRun { side: Side; dir: string; rows: RawRow[]; record: RunRecord }

export interface Run {
  sides: SideRun[];
  /** The folder holding one folder per side (and compare/), for a run of two refs; else null. */
  parent: string | null;
  jobs: Job<Case>[];
  /** Jobs a resumed run had already done, in their order: their rows restore the stopping rule's state. */
  done: Job<Case>[];
  /** Set when resuming: what was already done. */
  resumed: ResumePlan | null;
}

/** Applies a record transition (lib/run-record.ts) to every side's record: the sides of a run share their state. */
export function updateRecords(run: Run, t: (r: RunRecord) => RunRecord): void {
  for (const s of run.sides) s.record = t(s.record);
}

/** PS_SHARED_SECRET from the environment or .env (here or beside the suite); a random one when unset. */
export function sharedSecret(say: (line: string) => void): string {
  dotenv.config({ quiet: true, path: [path.resolve('.env'), path.join(SUITE_DIR, '.env')] });
  const problem = secretWarning(process.env.PS_SHARED_SECRET ?? '');
  if (problem) say(problem);
  if (process.env.PS_SHARED_SECRET) return process.env.PS_SHARED_SECRET;
  say('PS_SHARED_SECRET not set: using a random secret for this run');
  return crypto.randomBytes(18).toString('base64url');
}

/** What the host must have before anything is built or made: the provider's tools (exit 1, naming packages), a data folder. */
export function preflight(m: Matrix): void {
  requireTools(PROVIDER_TOOLS[m.provider]);
  if (m.provider === 'local') {
    const problem = localDataParentProblem();
    if (problem) throw new InputError(problem);
  }
}

/** The first server's kind and path as prepareServers will record them, known before anything is built (the plan's profile). */
export function serverOrigin(m: Matrix, refs: string[], binaries: string[]): Pick<ServerRecord, 'kind' | 'path'> {
  if (binaries.length > 0) return { kind: 'binary', path: binaries[0] };
  if (refs.length === 0 && m.server.kind === 'standin') return { kind: 'standin', path: null };
  if (refs.length === 0 && m.server.kind === 'binary') return { kind: 'binary', path: m.server.binary };
  return { kind: 'source', path: m.server.kind === 'source' ? m.server.source : process.cwd() };
}

/** The server(s) under test; refs are built here, before any case, and a failed build stops the run. */
export async function prepareServers(
  m: Matrix, refs: string[], binaries: string[], progress: Progress, standinEnv = standinKnobsFrom(process.env),
): Promise<Side[]> {
  const origin = serverOrigin(m, refs, binaries); // the plan keyed its machine profile on the same choice
  if (origin.kind === 'binary' && binaries.length > 0) {
    // --binary A --binary B: prebuilt servers compared as refs are; each named by its file.
    for (const b of binaries) {
      try { fs.accessSync(b, fs.constants.X_OK); } catch { throw new InputError(`--binary: ${b} is not an executable file`); }
    }
    return binaries.map((b) => ({ name: path.basename(b), spec: { kind: 'binary', binaryPath: b, env: {} }, record: { kind: 'binary', path: b, git: null } }));
  }
  if (origin.kind === 'standin') {
    const bundle = await cachedStandinBundle();
    return [{ name: 'standin', spec: { kind: 'standin', binaryPath: bundle, env: standinEnv }, record: { kind: 'standin', path: null, git: null, standin_env: standinEnv } }];
  }
  if (origin.kind === 'binary' && m.server.kind === 'binary') {
    try { fs.accessSync(m.server.binary, fs.constants.X_OK); } catch {
      throw new InputError(`server.binary: ${m.server.binary} is not an executable file`);
    }
    const workdir = m.server.workdir;
    if (workdir && !fs.statSync(workdir, { throwIfNoEntry: false })?.isDirectory()) throw new InputError(`server.workdir: ${workdir} is not a folder`);
    const spec: ServerSpec = { kind: 'binary', binaryPath: m.server.binary, workDir: workdir, env: {} };
    return [{ name: 'binary', spec, record: { kind: 'binary', path: m.server.binary, git: null, workdir: workdir ?? null } }];
  }
  const source = origin.path!;
  const build = m.server.kind === 'source' ? m.server.build : DEFAULT_BUILD;
  const wanted = refs.length > 0 ? refs : [WORKTREE_REF];
  progress.line(`building ${wanted.join(' and ')} from ${source}: ${build.join(' ')}`);
  const built = await buildRefs(source, wanted, build);
  return built.map((b) => {
    progress.line(`${b.name}: commit ${b.commit.slice(0, 12)}${b.dirty ? ' + uncommitted changes' : ''}, ` +
      `${b.cached ? `cached build (built in ${b.buildSeconds.toFixed(1)} s)` : `built in ${b.buildSeconds.toFixed(1)} s`}, ${b.goVersion ?? 'no go'}`);
    return {
      name: b.name,
      spec: { kind: 'binary', binaryPath: b.binaryPath, workDir: b.treeDir, env: {} },
      record: {
        kind: 'source', path: source, git: { commit: b.commit, branch: b.name, dirty: b.dirty },
        build: {
          ref: b.name, command: build, go_version: b.goVersion, binary_path: b.binaryPath, tree: b.treeDir,
          build_seconds: Math.round(b.buildSeconds * 1000) / 1000, cached: b.cached,
        },
      },
    };
  });
}

/** The cases this machine runs: the matrix's, or with --shard k/N only the whole cases of shard k (lib/shard.ts). */
export function planCases(m: Matrix, shard: Shard | null, refs: number): Case[] {
  return shard ? shardCases(m, shard, refs) : expandCases(m);
}

/** After the disk check, the test file of every size among `cases`, generated or verified from the cache; stops early (null) when `stopped()` says so. */
export async function prepareTestFiles(m: Matrix, cases: Case[], progress: Progress, stopped: () => boolean): Promise<Map<number, TestFile> | null> {
  checkDiskSpace(diskPlanFor(m)); // room for the files still to make, the servers' data and a guest image to build (exit 1)
  const files = new Map<number, TestFile>();
  for (const size of m.sizes.filter((s) => cases.some((c) => c.size.bytes === s.bytes))) {
    if (stopped()) return null;
    const t0 = Date.now();
    const f = await ensureTestFile(size.bytes);
    files.set(size.bytes, f);
    progress.line(`test file ${size.label}: ${f.generated ? 'generated' : 'cached, verified'} in ${((Date.now() - t0) / 1000).toFixed(1)} s (${f.path})`);
  }
  return files;
}

/**
 * The qemu provider's guest image, sized for the matrix's largest file (its
 * spool and its store): a cached image too small for it is rebuilt, before any
 * results folder exists. Vagrant sizes the image it makes its box from the same
 * way (makeProvider); local needs none.
 */
export async function prepareGuestImage(
  m: Matrix, say: (line: string) => void, ensure: typeof ensureGuestImage = ensureGuestImage,
): Promise<GuestImage | null> {
  if (m.provider !== 'qemu') return null;
  return ensure({ diskBytes: imageBytesFor(m), say });
}

export function makeProvider(m: Matrix, spec: ServerSpec, secret: string, image: GuestImage | null, ctx: ProviderContext): Provider {
  const launch = { server: spec, secret, readinessTimeoutSeconds: m.readinessTimeoutSeconds };
  if (m.provider === 'qemu') return new QemuProvider(launch, { cpus: m.vmCpus, image: image ?? undefined, diskBytes: imageBytesFor(m), ...ctx });
  if (m.provider === 'vagrant') return new VagrantProvider(launch, { cpus: m.vmCpus, box: m.vmBox, diskBytes: imageBytesFor(m), ...ctx });
  return new LocalProvider(launch, ctx);
}

/**
 * --iterations auto: the stopping rule (lib/stats/sequential.ts), family-wise
 * over every comparison the run makes: each of `cases` (run-tests gives the
 * whole matrix's, also to a --shard, so every shard records the same rule)
 * against each of the `laterServers` (every --ref after the first).
 */
export function adaptiveRule(adaptive: { maxRounds: number; noisePct: number } | null, cases: Case[], laterServers = 1): StoppingRule | null {
  if (!adaptive) return null;
  const distinct = new Set(cases.map(caseKey)).size;
  return stoppingRule({ alpha: 0.05, noisePct: adaptive.noisePct, cases: distinct * Math.max(1, laterServers), maxRounds: adaptive.maxRounds });
}

/** A side as compare-runs would load its folder: paired with the others by its record's ab (the machine canary only counts for separate runs). */
export function comparedSide(s: Pick<SideRun, 'dir' | 'rows' | 'record'>): ComparedRun {
  return { dir: s.dir, name: path.basename(s.dir), config: s.record, rows: s.rows, canary: [] };
}

/** --iterations auto without --no-pool: the matrix-level same (lib/stats/pooled.ts), at the confidence the run's schedule needs. */
export function pooledRuleFor(adaptive: { noisePct: number; pooled: boolean } | null, cases: Case[], acrossLimits: boolean): PooledRule | null {
  if (!adaptive?.pooled) return null;
  const limitsInTurn = acrossLimits ? 1 : new Set(cases.map((c) => c.memoryMb)).size;
  return pooledRule({ noisePct: adaptive.noisePct, cases: new Set(cases.map(caseKey)).size, confidence: pooledConfidence(limitsInTurn) });
}

const pct = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}%`;

/**
 * The plan of a run (lib/stats/plan.ts): its cases, the rule, this machine's last
 * measured speeds and noise for this server (`profile`: profileKey), and what --shard 2, 4 and 8 would make of it.
 */
export function planRun(m: Matrix, cases: Case[], sides: number, rule: StoppingRule | null, pooled: PooledRule | null, profile: string): PlanRecord {
  const distinct = new Map<string, Case>();
  for (const c of cases) distinct.set(caseKey(c), c);
  const keyOf = (bytes: number, mem: number) => [...distinct.entries()].filter(([, c]) => c.size.bytes === bytes && c.memoryMb === mem).map(([k]) => k);
  const shardable = distinct.size === expandCases(m).length / m.iterations; // a --shard run plans its own share only
  const shards = shardable ? [2, 4, 8].filter((n) => n <= m.sizes.length * m.memoryLimitsMb.length)
    .map((total) => ({ total, cases: planShards(m, total, sides).map((s) => s.cases.flatMap((c) => keyOf(c.size.bytes, c.memoryMb))) })) : [];
  return makePlan({
    cases: [...distinct.entries()].map(([key, c]) => ({
      key, label: caseRunLabel(c.size.label, { memoryMb: c.memoryMb, concurrency: c.concurrency ?? 1 }), bytes: c.size.bytes, concurrency: c.concurrency ?? 1,
    })),
    sides, warmup: m.warmupIterations, iterations: rule ? null : m.iterations, rule, pooled, profile: readMachineProfile(profile) ?? DEFAULT_PROFILE, shards,
    canaryNow: median([cpuCanarySeconds(), cpuCanarySeconds(), cpuCanarySeconds()]),
  });
}

/** Folder names for the sides of a run of refs: the refs, made safe as names, told apart when they collide. */
export function sideFolderNames(names: string[]): string[] {
  const safe = names.map((n) => n.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_'));
  return safe.map((n, i) => (safe.indexOf(n) !== safe.lastIndexOf(n) ? `${n}-${i + 1}` : n));
}

async function gitInfo(dir: string): Promise<GitRecord | null> {
  const git = $({ cwd: dir, nothrow: true, quiet: true });
  const commit = (await git`git rev-parse HEAD`).stdout.trim();
  if (!commit) return null;
  return {
    commit,
    branch: (await git`git rev-parse --abbrev-ref HEAD`).stdout.trim(),
    dirty: (await git`git status --porcelain`).stdout.trim() !== '',
  };
}

export interface OpenRunOptions {
  m: Matrix;
  /** planCases(): every case this run is to run, before a resume leaves out what is done. */
  cases: Case[];
  /** --shard and how many --ref it was planned with (planCases). */
  shard: { shard: Shard; refs: number } | null;
  sides: Side[];
  out: string;
  argv: string[];
  matrixFile: string;
  seed: number;
  resume: ResumeState | null;
  /** --iterations auto: the stopping rule every case of this run is judged by. */
  rule: StoppingRule | null;
  /** The matrix-level same (lib/stats/pooled.ts), with the rule; null without. */
  pooled: PooledRule | null;
  /** The plan printed before the run (lib/stats/plan.ts), recorded to compare with the real time. */
  plan: PlanRecord | null;
  /** Where the folders' paths go (stdout) should the run stop before it could close them. */
  stdout: (text: string) => void;
}

/** Whether adaptive rounds take every memory limit's cases in each round: each limit's environment stays up meanwhile. */
export function roundsAcrossLimits(m: Matrix): boolean {
  return m.provider === 'local';
}

/**
 * Makes the results folders and writes each side's config.json (not finished
 * yet); plans the jobs: every case once per side, the sides of each case in an
 * order drawn from the seed; a resume plans only what raw.csv lacks.
 */
export async function openRun(o: OpenRunOptions, say: (line: string) => void): Promise<Run> {
  const ab = o.sides.length > 1;
  if (o.resume && o.resume.sides.length !== o.sides.length) {
    throw new Error(`resuming ${o.resume.dir}: ${o.resume.sides.length} recorded sides, ${o.sides.length} servers prepared`);
  }
  const parent = ab ? o.resume?.parent ?? createRunDir(o.out) : null;
  const dirs = o.resume ? o.resume.sides.map((s) => s.dir)
    : parent ? sideFolderNames(o.sides.map((s) => s.name)).map((n) => { const d = path.join(parent, n); fs.mkdirSync(d); return d; })
      : [createRunDir(o.out)];
  const suiteVersion = (JSON.parse(fs.readFileSync(path.join(SUITE_DIR, 'package.json'), 'utf8')) as { version: string }).version;
  const suiteGit = await gitInfo(SUITE_DIR);
  const sides = o.sides.map((side, i): SideRun => {
    const record = newRunRecord({
      suite_version: suiteVersion, suite_git: suiteGit, command: o.argv, matrix_file: o.matrixFile,
      started_at: new Date().toISOString(), provider: o.m.provider, server: side.record,
      ...(parent ? {
        ab: {
          refs: o.sides.map((s) => s.name), this_ref: i, seed: o.seed, parent,
          order: `${o.rule ? `adaptive rounds in turn (round by round${roundsAcrossLimits(o.m) ? ', every memory limit in each round' : ', a memory limit at a time'})` : 'cases in matrix order'}; ` +
            'each case runs once per ref, the refs in an order drawn per case from mulberry32(seed) (lib/stats/interleave.ts)',
          ...(o.rule ? { stopping_rule: o.rule } : {}),
          ...(o.pooled ? { pooled_rule: o.pooled } : {}),
        },
      } : {}),
      ...(o.plan ? { plan: o.plan } : {}),
      matrix: matrixRecord(o.m, configuredBox(o.m.vmBox)),
      ...(o.shard ? { shard: shardRecord(o.m, o.shard.shard, o.shard.refs) } : {}),
      host: hostFingerprint(),
    });
    return { side, dir: dirs[i], rows: [...(o.resume?.sides[i].rows ?? [])], record };
  });
  if (o.resume) {
    for (const [i, s] of sides.entries()) {
      const merged = mergeResumedRecord(o.resume.sides[i].record, s.record, o.resume.droppedRounds);
      s.record = merged.record;
      for (const w of merged.warnings) say(`WARNING: resuming ${s.dir}: ${w}`);
    }
  }
  try {
    for (const s of sides) writeConfig(s.dir, s.record);
  } catch (e) {
    // A disk that fills up here still leaves the folders made: name them, as a run's last stdout lines do.
    for (const d of [...dirs, ...(parent ? [parent] : [])]) o.stdout(`${d}\n`);
    throw e;
  }
  for (const s of sides) say(`results${ab ? ` for ${s.side.name}` : ''}: ${s.dir}`);
  // A resume goes on in the recorded order: every job of the whole run drawn from the recorded seed as at the
  // start, those with their rows already in raw.csv taken out (they are replayed into the stopping rule instead).
  const plans = o.resume ? sides.map((s) => planResume(o.cases, s.rows)) : null;
  // Adaptive rounds take the cases in turn, round by round, so the pool sees them together: every limit's
  // cases on the local provider (a cgroup per limit, all up at once costs nothing), a limit's cases on a VM.
  const all = interleave(o.rule ? roundsInTurn(o.cases, roundsAcrossLimits(o.m)) : o.cases, sides.length, o.seed);
  const left = plans ? plans.map((p) => new Set(p.remaining)) : null;
  const jobs = left ? all.filter((j) => left[j.side].has(j.case)) : all;
  if (plans) say(`resuming: ${all.length - jobs.length} iterations already in raw.csv, ${jobs.length} to run`);
  return { sides, parent, jobs, done: left ? all.filter((j) => !left[j.side].has(j.case)) : [], resumed: plans ? plans[0] : null };
}

export interface ExecuteContext {
  m: Matrix;
  files: Map<number, TestFile>;
  secret: string;
  signal: AbortSignal;
  progress: Progress;
  /** Adaptive rounds judged otherwise than on throughput (a bisection step, lib/stats/bisect.ts); default: the recorded rule's. */
  /** Their stops are the bisection's to record (bisect.json), not ab.stops (whose verdicts are throughput's words). */
  rounds?: { record(side: number, row: RawRow): { state: 'decided' | 'cap'; rounds: number; verdicts: string[] } | null; stopped(key: string): boolean };
}

/** Runs every job, appending each row to its side's raw.csv as it is measured; sets `finished` when none was cut short. */
export async function executeRun(run: Run, provider: Provider, ctx: ExecuteContext): Promise<void> {
  const { m, progress, signal } = ctx;
  const ab = run.sides.length > 1;
  // The folder name tells the sides apart even when both are the same ref (an A/A run).
  const tag = (j: Job<Case>) => (ab ? `${path.basename(run.sides[j.side].dir)} ` : '');
  const total = run.jobs.length;
  let k = 0;
  const started = new Set<string>(); // (side, memory, size) with an iteration run by this process
  let lastCase = '';
  const failFast = new FailFast();
  const rule = run.sides[0].record.ab?.stopping_rule;
  // The stopping rule on throughput, unless the caller judges its own rounds (a bisection's metric: lib/bisect-run.ts).
  const throughputRounds = rule && !ctx.rounds ? new AdaptiveRounds(rule, run.sides.length, m.warmupIterations, run.sides[0].record.ab?.pooled_rule ?? null) : null;
  if (throughputRounds) replayStops(run, throughputRounds);
  const adaptive = ctx.rounds ?? throughputRounds;
  const plan = run.sides[0].record.plan ?? null;
  const cuts = m.noiseCuts ?? DEFAULT_NOISE_CUTS;
  const warmFile = cuts.includes('warm-upload') ? await ensureTestFile(4 * MiB) : undefined;
  /** Per case: wall seconds of its jobs, and its side-0 measured iterations (its rounds); the time left comes from them. */
  const paces = new Map<string, { seconds: number[]; rounds: number }>();
  const timed: { row: RawRow; seconds: number }[] = [];
  const left = () => {
    if (!plan) return '';
    const progressed = [...paces.entries()].map(([key, p]) => ({
      key, rounds: p.rounds, stopped: adaptive?.stopped(key) ?? false, jobSeconds: p.seconds.reduce((a, b) => a + b, 0) / p.seconds.length,
    }));
    return `, run ~${duration(timeLeft(plan, progressed, rule?.looks ?? null, m.warmupIterations))} left`;
  };
  const record = (o: IterationOutcome, j: Job<Case>) => {
    const side = run.sides[j.side];
    const rows = o.rows ?? [o.row];
    side.rows.push(...rows);
    for (const row of rows) appendRawRow(side.dir, row);
    if (o.samples?.length) appendSamples(side.dir, o.samples);
    if (o.failure) appendFailure(side.dir, o.failure);
    const r = o.row;
    const n = rows.length > 1 ? ` x${rows.length}` : '';
    progress.line(`[${k}/${total}] ${tag(j)}${r.memory_limit} ${r.file_size}${n} #${r.iteration}: ${r.exit_reason} ` +
      `${r.duration_seconds.toFixed(2)} s${r.throughput_mib_s !== null ? ` ${r.throughput_mib_s.toFixed(1)} MiB/s` : ''}${r.error ? ` (${r.error})` : ''}`);
    if (process.env.UPS_SELF_STATS === '1') progress.line(formatSelfStats(selfStats(k)));
    // The rule sees what compare-runs judges: with N uploads at once, the iteration's aggregate (lib/cases.ts iterationRows).
    const stop = adaptive?.record(j.side, ruleRow(rows));
    if (stop) {
      const pooled = 'pooled' in stop ? stop.pooled : undefined;
      const how = stop.state === 'decided' ? 'decided' : stop.state === 'cap' || !pooled ? 'undecided at the last look'
        : `let go by the pool (pooled change ${pct(pooled.changePct)} [${pct(pooled.loPct)}, ${pct(pooled.hiPct)}] over ${pooled.cases} cases)`;
      progress.line(`${r.memory_limit} ${r.file_size}: ${how} after ${stop.rounds} rounds: ` +
        run.sides.slice(1).map((s, i) => `${s.side.name} ${stop.verdicts[i]}`).join(', '));
      if (throughputRounds) updateRecords(run, (r) => transitions.stopRecorded(r, throughputRounds.all()));
    }
    // Fail fast (lib/failfast.ts): every row but vm_failed is one start of this side's server.
    const never = r.exit_reason !== 'vm_failed' && failFast.observe(String(j.side), r.exit_reason === 'not_ready' ? o.notReadyAnswer ?? r.error : null);
    if (never) throw new ServerNeverReady(failFastMessage(side.side.name, never, o.failure ?? ''));
  };
  try {
    await runMatrix(run.jobs, {
      up: async (memoryMb, replacement) => {
        if (replacement > 0) progress.line(`${memoryMb} MB: the environment died; bringing up a new one (replacement ${replacement} of at most ${MAX_REPLACEMENTS})`);
        const env = await provider.up(memoryMb);
        updateRecords(run, (r) => transitions.environmentUp(r, memoryMb, replacement > 0 ? { ...env.facts, environments: replacement + 1 } : env.facts));
        for (const s of run.sides) writeConfig(s.dir, s.record);
        return env;
      },
      runCase: async (env, j) => {
        k++;
        const c = j.case;
        const file = ctx.files.get(c.size.bytes)!;
        const name = caseRunLabel(c.size.label, { memoryMb: c.memoryMb, concurrency: c.concurrency ?? 1 });
        const label = `[${k}/${total}${left()}] ${tag(j)}${name} #${c.iteration}`;
        const it = {
          env, testCase: c, file, server: run.sides[j.side].side.spec, secret: ctx.secret, signal,
          // A VM under software emulation (TCG) is several times slower: its environment says by how much.
          uploadTimeoutSeconds: m.uploadTimeoutSeconds * env.timeoutFactor,
          // Auth is one small request to a server that has just answered GET /: the time it had to get ready is
          // ample, and already the knob a slow environment raises (no second setting to keep in step).
          authTimeoutSeconds: m.readinessTimeoutSeconds * env.timeoutFactor,
          noiseCuts: cuts, warmFile,
        };
        // The machine canary before each case: how fast the host itself was at this point of the run.
        // Adaptive rounds take the cases in turn: there the canary runs before each round.
        const canaryKey = rule ? `round ${c.iteration}` : name;
        if (canaryKey !== lastCase) {
          lastCase = canaryKey;
          const t = runCanary(localDataParent());
          for (const s of run.sides) appendCanaryRow(s.dir, { at: new Date().toISOString(), before_case: name, ...t });
        }
        // A resumed case whose warm-up ran before the interruption goes on in a fresh, cold environment:
        // one upload first, not recorded, warms it as the recorded warm-up did.
        const warmKey = `${j.side}/${caseKey(c)}`;
        const firstHere = !started.has(warmKey);
        started.add(warmKey);
        if (run.resumed && firstHere && c.iteration > m.warmupIterations) {
          const w = await runIteration({ ...it, progress: progress.upload(`${label} warm-up again`, file.bytes * (c.concurrency ?? 1)) });
          progress.line(`${label}: warm-up again (not recorded: resumed in a fresh environment): ${w.row.exit_reason} ${w.row.duration_seconds.toFixed(2)} s`);
        }
        const t0 = performance.now();
        const outcome = await runIteration({ ...it, progress: progress.upload(label, file.bytes * (c.concurrency ?? 1)) });
        const seconds = (performance.now() - t0) / 1000;
        const key = caseKey(c);
        const pace = paces.get(key) ?? { seconds: [], rounds: 0 };
        paces.set(key, pace);
        pace.seconds.push(seconds);
        if (j.side === 0 && c.iteration > m.warmupIterations) pace.rounds++;
        if (c.iteration > m.warmupIterations) timed.push({ row: outcome.row, seconds });
        return outcome;
      },
      record,
      envFailed: (memoryMb, error, group) => {
        for (const j of group) {
          k++;
          record(vmFailedOutcome(j.case, memoryMb, error), j);
        }
      },
      stopped: () => signal.aborted,
      skip: (j) => adaptive?.stopped(caseKey(j.case)) ?? false,
    });
    if (!signal.aborted) updateRecords(run, transitions.finished);
    // The next run's plan goes by what this one measured here.
    // Runs inside the test runner (NODE_TEST_CONTEXT) measure stand-ins and throttles, not this machine.
    const measured = !signal.aborted && run.sides.length >= 2 && !process.env.NODE_TEST_CONTEXT ? profileFromRun(run.sides.map((s) => s.rows), timed, run.parent ?? run.sides[0].dir, plan?.canary_now_seconds ?? null) : null;
    if (measured) {
      const key = profileKey(run.sides[0].record.server);
      writeMachineProfile(key, nextProfile(readMachineProfile(key), measured));
    }
  } catch (e) {
    if (e instanceof AuthRejected) {
      updateRecords(run, (r) => transitions.interrupted(r, e.message));
      throw new InputError(e.message);
    }
    if (!signal.aborted) {
      const first = (e as Error).message.split('\n')[0];
      updateRecords(run, (r) => transitions.interrupted(r, e instanceof ServerNeverReady ? first : `suite error: ${first}`));
      throw e;
    }
  }
}

/**
 * A resumed run's stopping-rule state (looks taken, cases decided): its rows fed
 * to the rule in the order they were measured, each iteration as executeRun
 * passed it (its first failed upload, else its first). The rows are the record:
 * config.json's ab.stops is written with the environments and at the end, so a
 * killed run's copy may lack its last stops.
 */
function replayStops(run: Run, adaptive: AdaptiveRounds): void {
  const rowsOf = new Map<string, RawRow[]>();
  for (const [i, s] of run.sides.entries()) {
    for (const r of s.rows) rowsOf.set(`${i}/${caseKey(r)}#${r.iteration}`, [...(rowsOf.get(`${i}/${caseKey(r)}#${r.iteration}`) ?? []), r]);
  }
  for (const j of run.done) {
    const c = j.case;
    const rows = rowsOf.get(`${j.side}/${caseKey(c)}#${c.iteration}`) ?? [];
    if (rows.length) adaptive.record(j.side, ruleRow(rows));
  }
  for (const s of run.sides) if (s.record.ab) s.record.ab.stops = adaptive.all();
}

/** history.md and history.svg in a run of several servers' parent folder: each case across the servers, in the order given. */
async function writeHistory(parent: string, sides: Parameters<typeof historyOf>[0]): Promise<void> {
  const history = historyOf(sides);
  const points = history.flatMap((h) => h.points);
  const chart = points.some((p) => p.throughputMiBs !== null) ? 'history.svg' : null;
  if (chart) writeFileAtomic(path.join(parent, chart), await historyChartSvg(points));
  writeFileAtomic(path.join(parent, 'history.md'), renderHistory(history, fs.readFileSync(path.join(SUITE_DIR, 'templates', 'history.md.mustache'), 'utf8'), chart));
}

/** The row and failures.log entry of an iteration whose environment could not be brought up. */
export function vmFailedOutcome(c: Case, memoryMb: number, error: Error): IterationOutcome {
  return {
    row: { ...newRow({ ...c, memoryMb }, new Date().toISOString()), exit_reason: 'vm_failed', error: error.message.split('\n')[0], failure_phase: 'start' },
    failure: `=== ${new Date().toISOString()} ${caseRunLabel(c.size.label, { memoryMb, concurrency: c.concurrency ?? 1 })} iteration ${c.iteration}: vm_failed\nerror: ${error.message}\nphase: start\n`,
  };
}

/** However the run ended: every environment down, then each side's folder closed (config.json with its end, report.md, its path on stdout). */
export async function finishRun(run: Run, provider: Provider, out: (text: string) => void): Promise<void> {
  await provider.close();
  await closeClient();
  updateRecords(run, (r) => transitions.closed(r, new Date().toISOString()));
  for (const s of run.sides) {
    writeConfig(s.dir, s.record);
    await writeReportFiles(s.dir, s.rows, s.record);
    unlockRunDir(s.dir);
    out(`${s.dir}\n`);
  }
  if (run.parent) {
    await writeHistory(run.parent, run.sides.map((s) => ({ name: s.side.name, rows: s.rows, record: s.record })));
    unlockRunDir(run.parent);
  }
}
