// run-tests: runs the upload matrix (file sizes x memory limits) against the
// server under test and writes a results folder: raw.csv, report.md,
// failures.log, config.json. The last line on stdout is that folder's path.
//   ./run-tests --quick
//   ./run-tests --provider local --sizes 100MiB,1GiB --memory 1024,256 --iterations 5
//   ./run-tests --ref main --ref my-branch    # both builds interleaved, then their comparison
// Exit: 0 the run completed (failed cases are results), 1 the suite could not
// run (or, with two refs, the second is slower), 2 bad input, 130/143 interrupted.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import dotenv from 'dotenv';
import { $ } from 'zx';
import { main as compareRuns } from './compare-runs.mts';
import { closeClient } from './lib/client.ts';
import { checkDiskSpace, diskPlanFor } from './lib/diskspace.ts';
import { InputError, runIfMain } from './lib/errors.ts';
import { interleave } from './lib/interleave.ts';
import { AuthRejected, runIteration, type IterationOutcome } from './lib/iteration.ts';
import { runBuildImage, runDoctor } from './lib/doctor-probe.ts';
import { cleanupLocal, describeLocal, localDataParentProblem, LocalProvider } from './lib/local.ts';
import { configuredBox, killAllVagrantVms, VagrantProvider } from './lib/vagrant.ts';
import { killAllVms, QemuProvider } from './lib/qemu.ts';
import { DEFAULT_BUILD, expandCases, type Case, type Matrix } from './lib/matrix.ts';
import { HELP, parseOptions } from './lib/options.ts';
import { SUITE_DIR } from './lib/paths.ts';
import { secretWarning } from './lib/secret.ts';
import { Progress } from './lib/progress.ts';
import { buildRefs, WORKTREE_REF } from './lib/refs.ts';
import type { Provider, ServerSpec } from './lib/provider.ts';
import { writeReportFiles, type ReportInput } from './lib/report.ts';
import { appendFailure, appendRawRow, createRunDir, writeConfig } from './lib/results.ts';
import { mergeResumedConfig, planResume, type ResumableConfig } from './lib/resume.ts';
import { MAX_REPLACEMENTS, runMatrix } from './lib/runner.ts';
import { formatSelfStats, selfStats } from './lib/selfstats.ts';
import { cachedStandinBundle } from './lib/standin-bundle.ts';
import { standinKnobsFrom } from './lib/standin-knobs.ts';
import { ensureTestFile, type TestFile } from './lib/testfiles.ts';

/** One server under test: a launchable spec, plus what config.json records about it. Two of them for an A/B run. */
interface Side { name: string; spec: ServerSpec; record: Record<string, unknown> }

/** The server(s) under test; refs are built here, before any case, and a failed build stops the run. */
async function prepareServers(m: Matrix, refs: string[], progress: Progress, env = standinKnobsFrom(process.env)): Promise<Side[]> {
  if (refs.length === 0 && m.server.kind === 'standin') {
    const bundle = await cachedStandinBundle();
    return [{ name: 'standin', spec: { kind: 'standin', binaryPath: bundle, env }, record: { kind: 'standin', path: null, git: null, standin_env: env } }];
  }
  if (refs.length === 0 && m.server.kind === 'binary') {
    try { fs.accessSync(m.server.binary, fs.constants.X_OK); } catch {
      throw new InputError(`server.binary: ${m.server.binary} is not an executable file`);
    }
    const spec: ServerSpec = { kind: 'binary', binaryPath: m.server.binary, env: {} };
    return [{ name: 'binary', spec, record: { kind: 'binary', path: m.server.binary, git: null } }];
  }
  const source = m.server.kind === 'source' ? m.server.source : process.cwd();
  const build = m.server.kind === 'source' ? m.server.build : DEFAULT_BUILD;
  const wanted = refs.length > 0 ? refs : [WORKTREE_REF];
  progress.line(`building ${wanted.join(' and ')} from ${source}: ${build.join(' ')}`);
  const built = await buildRefs(source, wanted, build);
  return built.map((b) => {
    progress.line(`${b.name}: commit ${b.commit.slice(0, 12)}${b.dirty ? ' + uncommitted changes' : ''}, ` +
      `${b.cached ? `cached build (built in ${b.buildSeconds.toFixed(1)} s)` : `built in ${b.buildSeconds.toFixed(1)} s`}, ${b.goVersion ?? 'no go'}`);
    return {
      name: b.name,
      spec: { kind: 'binary', binaryPath: b.binaryPath, env: {} },
      record: {
        kind: 'source', path: source, git: { commit: b.commit, branch: b.name, dirty: b.dirty },
        build: {
          ref: b.name, command: build, go_version: b.goVersion, binary_path: b.binaryPath,
          build_seconds: Math.round(b.buildSeconds * 1000) / 1000, cached: b.cached,
        },
      },
    };
  });
}

/** Folder names for the sides of an A/B run: the refs, made safe as names, told apart when they collide. */
export function sideFolderNames(names: string[]): string[] {
  const safe = names.map((n) => n.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_'));
  return safe.map((n, i) => (safe.indexOf(n) !== safe.lastIndexOf(n) ? `${n}-${i + 1}` : n));
}

async function gitInfo(dir: string) {
  const git = $({ cwd: dir, nothrow: true, quiet: true });
  const commit = (await git`git rev-parse HEAD`).stdout.trim();
  if (!commit) return null;
  return {
    commit,
    branch: (await git`git rev-parse --abbrev-ref HEAD`).stdout.trim(),
    dirty: (await git`git status --porcelain`).stdout.trim() !== '',
  };
}

function hostInfo() {
  return {
    hostname: os.hostname(), cpu_model: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length,
    kernel: os.release(), memory_bytes: os.totalmem(),
  };
}

function makeProvider(m: Matrix, spec: ServerSpec, secret: string): Provider {
  const launch = { server: spec, secret, readinessTimeoutSeconds: m.readinessTimeoutSeconds };
  if (m.provider === 'local') return new LocalProvider(launch);
  if (m.provider === 'vagrant') return new VagrantProvider(launch, { cpus: m.vmCpus, box: m.vmBox });
  if (m.provider === 'qemu') return new QemuProvider(launch, { cpus: m.vmCpus });
  throw new InputError(`--provider ${m.provider}: not available in this version (use local)`);
}

export async function main(argv: string[]): Promise<number> {
  const opts = parseOptions(argv);
  if (opts === 'help') { process.stdout.write(HELP); return 0; }
  if (opts.mode === 'doctor') return runDoctor(opts.matrix, { fix: opts.fix });
  if (opts.mode === 'build-image') return runBuildImage(opts.matrix);
  const m = opts.matrix;
  const progress = new Progress();
  dotenv.config({ quiet: true, path: [path.resolve('.env'), path.join(SUITE_DIR, '.env')] });
  let secret = process.env.PS_SHARED_SECRET ?? '';
  const secretProblem = secretWarning(secret);
  if (secretProblem) progress.line(secretProblem);
  if (!secret) {
    secret = crypto.randomBytes(18).toString('base64url');
    progress.line('PS_SHARED_SECRET not set: using a random secret for this run');
  }

  if (m.provider === 'local') {
    const problem = localDataParentProblem();
    if (problem) throw new InputError(problem);
  }

  const resume = opts.resume;
  if (resume?.config.finished) {
    progress.line(`${resume.dir} already finished (${resume.rows.length} rows, ended ${String(resume.config.ended_at)}): nothing to resume, nothing changed`);
    process.stdout.write(`${resume.dir}\n`);
    return 0;
  }
  if (resume?.droppedPartialLine) progress.line(`raw.csv ended in a cut-off line, dropped: ${resume.droppedPartialLine}`);
  // Builds and test files clean up after themselves (a ref's worktree is removed in a finally): a signal
  // before the run proper waits for that, instead of ending the process with a worktree left behind.
  // Held until the run's own handler takes over, so a results folder once made always gets its config.json.
  let held: NodeJS.Signals | null = null;
  const hold = (sig: NodeJS.Signals) => { held ??= sig; progress.line(`${sig}: stopping once the step under way has cleaned up (nothing measured yet)`); };
  const release = () => { process.off('SIGINT', hold); process.off('SIGTERM', hold); };
  process.on('SIGINT', hold);
  process.on('SIGTERM', hold);
  let sides: Side[] = [];
  const files = new Map<number, TestFile>();
  try {
    // A resume runs the stand-in with the knobs the run was started with, not today's environment.
    sides = await prepareServers(m, opts.refs, progress, resume?.config.server.standin_env);
    checkDiskSpace(diskPlanFor(m));
    for (const size of m.sizes) {
      if (held) break;
      const t0 = Date.now();
      const f = await ensureTestFile(size.bytes);
      files.set(size.bytes, f);
      progress.line(`test file ${size.label}: ${f.generated ? 'generated' : 'cached, verified'} in ${((Date.now() - t0) / 1000).toFixed(1)} s (${f.path})`);
    }
  } catch (e) {
    // A build the same Ctrl-C killed is the interruption, not a failed build.
    if (!held) {
      release();
      throw e;
    }
  }
  if (held) {
    release();
    return held === 'SIGINT' ? 130 : 143;
  }
  // Two refs share each environment: every provider's startServer(server) starts either build.
  const ab = sides.length > 1;

  // Two refs: one ordinary results folder per ref inside a parent folder.
  const parent = ab ? createRunDir(opts.out) : null;
  const dirs = parent
    ? sideFolderNames(sides.map((s) => s.name)).map((n) => { const d = path.join(parent, n); fs.mkdirSync(d); return d; })
    : [resume ? resume.dir : createRunDir(opts.out)];
  const seed = opts.seed ?? crypto.randomInt(2 ** 31);
  const suiteGit = await gitInfo(SUITE_DIR);
  const runs = sides.map((side, i) => ({
    side,
    dir: dirs[i],
    rows: [...(resume?.rows ?? [])],
    config: {
      suite_version: JSON.parse(fs.readFileSync(path.join(SUITE_DIR, 'package.json'), 'utf8')).version as string,
      suite_git: suiteGit,
      schema: 1,
      command: argv,
      matrix_file: opts.matrixFile,
      started_at: new Date().toISOString(),
      ended_at: null as string | null,
      finished: false,
      stop_reason: null as string | null,
      provider: m.provider,
      provider_facts: {} as Record<string, Record<string, unknown>>,
      server: side.record,
      ...(ab ? {
        ab: {
          refs: sides.map((s) => s.name), this_ref: i, seed, parent,
          order: 'cases in matrix order; each case runs once per ref, the refs in an order drawn per case from mulberry32(seed) (lib/interleave.ts)',
        },
      } : {}),
      matrix: {
        sizes: m.sizes.map((s) => ({ label: s.label, bytes: s.bytes })),
        memory_limits_mb: m.memoryLimitsMb,
        iterations: m.iterations,
        warmup_iterations: m.warmupIterations,
        upload_timeout_seconds: m.uploadTimeoutSeconds,
        readiness_timeout_seconds: m.readinessTimeoutSeconds,
        vm_cpus: m.vmCpus,
        vm_box: configuredBox(m.vmBox),
      },
      host: hostInfo(),
    },
  }));
  if (resume) {
    const merged = mergeResumedConfig(resume.config, runs[0].config as typeof runs[0]['config'] & ResumableConfig);
    runs[0].config = merged.config;
    for (const w of merged.warnings) progress.line(`WARNING: resuming ${resume.dir}: ${w}`);
  }
  const configs = runs.map((r) => r.config);
  const writeConfigs = () => runs.forEach((r) => writeConfig(r.dir, r.config));
  writeConfigs();
  for (const r of runs) progress.line(`results${ab ? ` for ${r.side.name}` : ''}: ${r.dir}`);

  const stop = new AbortController();
  let exitCode = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      const waiting = describeLocal();
      progress.line(`${sig} again: still cleaning up (the cleanup is not abandoned): waiting for ${waiting.length ? waiting.join('; ') : 'the results files to be written'}`);
      return;
    }
    exitCode = sig === 'SIGINT' ? 130 : 143;
    for (const c of configs) c.stop_reason = `interrupted by ${sig}`;
    progress.line(`${sig}: stopping the current upload and tearing down`);
    stop.abort();
  };
  release();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A signal while the folders were made: they are closed like any interrupted run's (config.json, report).
  if (held) onSignal(held);

  const provider = makeProvider(m, sides[0].spec, secret);
  // Each case once per side; with one side this is the plain case order.
  const plan = resume ? planResume(expandCases(m), resume.rows) : null;
  if (plan) progress.line(`resuming: ${plan.done} iterations already in raw.csv, ${plan.remaining.length} to run`);
  const jobs = interleave(plan ? plan.remaining : expandCases(m), runs.length, seed);
  const sideOf = new Map(jobs.map((j) => [j.item, j.side]));
  const cases = jobs.map((j) => j.item);
  // The folder name tells the sides apart even when both are the same ref (an A/A run).
  const tag = (c: Case) => (ab ? `${path.basename(runs[sideOf.get(c)!].dir)} ` : '');
  let k = 0;
  const started = new Set<string>(); // cases (side, memory, size) with an iteration run by this process
  const record = (o: IterationOutcome, c: Case) => {
    const run = runs[sideOf.get(c)!];
    run.rows.push(o.row);
    appendRawRow(run.dir, o.row);
    if (o.failure) appendFailure(run.dir, o.failure);
    const r = o.row;
    progress.line(`[${k}/${cases.length}] ${tag(c)}${r.memory_limit} ${r.file_size} #${r.iteration}: ${r.exit_reason} ` +
      `${r.duration_seconds.toFixed(2)} s${r.throughput_mib_s !== null ? ` ${r.throughput_mib_s.toFixed(1)} MiB/s` : ''}${r.error ? ` (${r.error})` : ''}`);
    if (process.env.UPS_SELF_STATS === '1') progress.line(formatSelfStats(selfStats(k)));
  };
  try {
    await runMatrix(cases, {
      up: async (memoryMb, replacement) => {
        if (replacement > 0) progress.line(`${memoryMb} MB: the environment died; bringing up a new one (replacement ${replacement} of at most ${MAX_REPLACEMENTS})`);
        const env = await provider.up(memoryMb);
        for (const c of configs) c.provider_facts[String(memoryMb)] = replacement > 0 ? { ...env.facts, environments: replacement + 1 } : env.facts;
        writeConfigs();
        return env;
      },
      runCase: async (env, c: Case) => {
        k++;
        const file = files.get(c.size.bytes)!;
        const label = `[${k}/${cases.length}] ${tag(c)}${c.memoryMb}MB ${c.size.label} #${c.iteration}`;
        // A VM under software emulation (TCG) is several times slower: its provider says by how much.
        const slowdown = Number(env.facts.timeout_factor ?? 1);
        const ctx = {
          env, testCase: c, file, server: runs[sideOf.get(c)!].side.spec, secret,
          uploadTimeoutSeconds: m.uploadTimeoutSeconds * slowdown, signal: stop.signal,
          // Auth is one small request to a server that has just answered GET /: the time it had to get ready is
          // ample, and already the knob a slow environment raises (no second setting to keep in step).
          authTimeoutSeconds: m.readinessTimeoutSeconds * slowdown,
        };
        // A resumed case whose warm-up ran before the interruption goes on in a fresh, cold environment:
        // one upload first, not recorded, warms it as the recorded warm-up did.
        const warmKey = `${sideOf.get(c)}/${c.memoryMb}/${c.size.bytes}`;
        const firstHere = !started.has(warmKey);
        started.add(warmKey);
        if (plan && firstHere && c.iteration > m.warmupIterations) {
          const w = await runIteration({ ...ctx, progress: progress.upload(`${label} warm-up again`, file.bytes) });
          progress.line(`${label}: warm-up again (not recorded: resumed in a fresh environment): ${w.row.exit_reason} ${w.row.duration_seconds.toFixed(2)} s`);
        }
        return runIteration({ ...ctx, progress: progress.upload(label, file.bytes) });
      },
      record,
      envFailed: (memoryMb, error, group) => {
        for (const c of group) {
          k++;
          record({
            row: {
              file_size: c.size.label, memory_limit: `${memoryMb}MB`, duration_seconds: 0, peak_memory_bytes: null,
              http_status: null, exit_reason: 'vm_failed', iteration: c.iteration, file_size_bytes: c.size.bytes,
              memory_limit_mb: memoryMb, transfer_seconds: null, processing_seconds: null, throughput_mib_s: null,
              server_peak_rss_bytes: null, sha256_ok: null, started_at: new Date().toISOString(), error: error.message.split('\n')[0],
              host_cpu_pressure_pct: null, failure_phase: 'start',
            },
            failure: `=== ${new Date().toISOString()} ${memoryMb}MB ${c.size.label} iteration ${c.iteration}: vm_failed\nerror: ${error.message}\nphase: start\n`,
          }, c);
        }
      },
      stopped: () => stop.signal.aborted,
    });
    if (!stop.signal.aborted) for (const c of configs) c.finished = true;
  } catch (e) {
    if (e instanceof AuthRejected) {
      for (const c of configs) c.stop_reason = e.message;
      throw new InputError(e.message);
    }
    if (!stop.signal.aborted) {
      for (const c of configs) c.stop_reason = `suite error: ${(e as Error).message.split('\n')[0]}`;
      throw e;
    }
  } finally {
    await cleanupLocal();
    await killAllVagrantVms();
    killAllVms();
    await closeClient();
    for (const run of runs) {
      run.config.ended_at = new Date().toISOString();
      writeConfig(run.dir, run.config);
      await writeReportFiles(run.dir, run.rows, run.config as unknown as ReportInput['config']);
      process.stdout.write(`${run.dir}\n`);
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (!parent) return exitCode;
  // The verdict: compare-runs on the two folders (exit 1 when the second ref is slower or fails more).
  if (!stop.signal.aborted) {
    exitCode = await compareRuns([runs[0].dir, runs[1].dir, '--out', path.join(parent, 'compare')]);
  }
  process.stdout.write(`${parent}\n`);
  return exitCode;
}

runIfMain(import.meta.url, main);
