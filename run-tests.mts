// run-tests: runs the upload matrix (file sizes x memory limits) against the server under test and writes
// a results folder (raw.csv, report.md, failures.log, config.json), its path last on stdout. This is the
// recipe; the steps are in lib/run.ts.   ./run-tests --quick   ./run-tests --ref main --ref my-branch
// Exit: 0 the run completed (failed cases are results), 1 the suite could not run (or, with two refs,
// the second is slower), 2 bad input, 130/143 interrupted.
import crypto from 'node:crypto';
import { DEFAULT_THRESHOLDS, type Comparison } from './lib/stats/compare.ts';
import { compareFolder, writeComparison, writeJunit } from './lib/comparison.ts';
import { runDoctor } from './lib/doctor-probe.ts';
import { PROCESS_IO, reportErrors, runIfMain, type Io } from './lib/errors.ts';
import { memoryFloor } from './lib/floor-run.ts';
import { expandRefRanges, runBisect } from './lib/bisect-run.ts';
import { buildImageCommand } from './lib/providers/image.ts';
import { comparisonSuite, renderJunit } from './lib/render/junit.ts';
import { Interrupts } from './lib/interrupts.ts';
import { HELP, parseOptions, type Options } from './lib/options.ts';
import { Progress } from './lib/progress.ts';
import { selfCheck } from './lib/self-check.ts';
import {
  adaptiveRule, comparedSide, executeRun, finishRun, makeProvider, openRun, planCases, planRun, pooledRuleFor, preflight, prepareGuestImage, prepareServers, prepareTestFiles, roundsAcrossLimits, serverOrigin, sharedSecret, updateRecords,
  type Run,
} from './lib/run.ts';
import { transitions } from './lib/run-record.ts';
import { renderPlan } from './lib/stats/plan.ts';
import { profileKey } from './lib/machine-profile.ts';
import { expandCases } from './lib/matrix.ts';

async function run(argv: string[], io: Io): Promise<number> {
  const opts = parseOptions(argv);
  if (opts === 'help') { io.stdout.write(HELP); return 0; }
  if (opts.mode === 'doctor') return runDoctor(opts.matrix, { fix: opts.fix }, (s) => io.stdout.write(s));
  if (opts.mode === 'build-image') return buildImageCommand(opts.matrix, (s) => io.stdout.write(s), (s) => io.stderr.write(s));
  if (opts.mode === 'self-check') return selfCheck(opts, io, runSuite);
  if (opts.mode === 'memory-floor') return memoryFloor(opts, argv, io);
  if (opts.mode === 'bisect') return runBisect(opts, argv, io); // which commit changed the metric (lib/bisect-run.ts)
  return (await runSuite(opts, argv, io)).code;
}

/** What a run leaves besides its folders: its exit code, its sides' rows and records, and each later side's comparison with the first. */
export interface SuiteOutcome { code: number; run: Run | null; comparisons: Comparison[] }

/** One run of the matrix, from parsed options (`argv` is what config.json records as the command). */
export async function runSuite(opts: Options, argv: string[], io: Io): Promise<SuiteOutcome> {
  const none = (code: number): SuiteOutcome => ({ code, run: null, comparisons: [] });
  const { matrix: m, resume } = opts;
  const progress = new Progress(io.stderr), say = (line: string) => progress.line(line);
  if (resume && resume.sides.every((s) => s.record.finished)) {
    const rows = resume.sides.reduce((n, s) => n + s.rows.length, 0);
    say(`${resume.dir} already finished (${rows} rows, ended ${resume.sides[0].record.ended_at}): nothing to resume` +
      (resume.parent ? '; its comparison is written again from its rows' : ', nothing changed'));
    if (!resume.parent) return io.stdout.write(`${resume.dir}\n`), none(0);
    // Its sides finished, its comparison perhaps not (killed while comparing): compared again, from the same rows.
    let code = 0;
    const comparisons: Comparison[] = [];
    for (const s of resume.sides.slice(1)) {
      const c = await writeComparison(comparedSide(resume.sides[0]), comparedSide(s), compareFolder(resume.parent, resume.sides.length, s.dir), DEFAULT_THRESHOLDS, io);
      comparisons.push(c.comparison);
      code = Math.max(code, c.code);
    }
    return io.stdout.write(`${resume.dir}\n`), { code, run: null, comparisons };
  }
  for (const s of resume?.sides ?? []) if (s.droppedPartialLine) say(`${s.dir}/raw.csv ended in a cut-off line, dropped: ${s.droppedPartialLine}`);
  for (const r of resume?.droppedRounds ?? []) {
    say(`${r.case} iteration ${r.iteration}: only ${r.sides.join(', ')} had completed it; dropped there, to run again on every side`);
  }
  // The plan, before anything is built or uploaded: --plan prints it and stops there.
  const refs = await expandRefRanges(m, opts.refs, opts.range); // --ref A..B: a commit per ref
  const cases = planCases(m, opts.shard, refs.length); // --shard k/N: this machine's whole cases
  const sides = Math.max(1, refs.length, opts.binaries.length);
  // One family for the whole run: the matrix's cases (not only this shard's) x the servers after the first.
  const rule = adaptiveRule(opts.adaptive, expandCases(m), sides - 1), pooled = pooledRuleFor(opts.adaptive, cases, roundsAcrossLimits(m));
  const plan = resume ? null : planRun(m, cases, sides, rule, pooled, profileKey(serverOrigin(m, refs, opts.binaries)));
  if (opts.plan) return io.stdout.write(renderPlan(plan!)), none(0);
  preflight(m); // tools and a data folder: before anything is built or made
  if (plan) for (const line of renderPlan(plan).trimEnd().split('\n')) say(line);

  // 1. Servers, test files, guest image. A signal waits for the step under way to clean up; no folder exists yet.
  const interrupts = new Interrupts(say).install();
  try {
    const stopped = () => interrupts.received !== null;
    const prepared = await (async () => {
      // A resume runs the stand-in with the knobs the run was started with, not today's environment.
      const sides = await prepareServers(m, refs, opts.binaries, progress, resume?.sides[0].record.server.standin_env);
      const files = await prepareTestFiles(m, cases, progress, stopped);
      return files && !stopped() ? { sides, files, image: await prepareGuestImage(m, say), secret: sharedSecret(say) } : null;
    })().catch((e: unknown) => { if (stopped()) return null; throw e; }); // a build the same Ctrl-C killed is the interruption
    if (!prepared || stopped()) return none(interrupts.exitCode() ?? 1);

    // 2. The results folders (config.json written, not finished) and the jobs: each case once per side, interleaved.
    const seed = opts.seed ?? crypto.randomInt(2 ** 31), shard = opts.shard && { shard: opts.shard, refs: refs.length };
    const run = await openRun({ m, cases, shard, sides: prepared.sides, out: opts.out, argv, matrixFile: opts.matrixFile, seed, resume,
      rule, pooled, plan, stdout: (s) => io.stdout.write(s) }, say);
    const provider = makeProvider(m, prepared.sides[0].spec, prepared.secret, prepared.image, { signal: interrupts.signal, say });
    interrupts.startRun((sig) => updateRecords(run, (r) => transitions.interrupted(r, `interrupted by ${sig}`)), () => provider.waitingFor());

    // 3. Every job, each row appended as measured; whatever happens, tear down and close the folders.
    try {
      await executeRun(run, provider, { ...prepared, m, signal: interrupts.signal, progress });
    } finally {
      await finishRun(run, provider, (s) => io.stdout.write(s));
    }
    if (!run.parent) return { code: interrupts.exitCode() ?? 0, run, comparisons: [] };

    // 4. Two or more servers: each later one against the first (exit 1 when any is slower or fails more often).
    let code = interrupts.exitCode() ?? 0;
    const comparisons: Comparison[] = [];
    for (const s of code === 0 ? run.sides.slice(1) : []) {
      const c = await writeComparison(comparedSide(run.sides[0]), comparedSide(s), compareFolder(run.parent, run.sides.length, s.dir), DEFAULT_THRESHOLDS, io);
      comparisons.push(c.comparison);
      code = Math.max(code, c.code);
    }
    if (opts.junit && comparisons.length > 0) writeJunit(opts.junit, renderJunit(comparisons.map((c) => comparisonSuite(c))));
    io.stdout.write(`${run.parent}\n`);
    return { code, run, comparisons };
  } finally {
    interrupts.uninstall();
  }
}

/** Runs the suite; every error becomes one "Error: ..." line and its exit code (2 bad input, 1 the suite could not run). */
export function main(argv: string[], io: Io = PROCESS_IO): Promise<number> {
  return reportErrors(io, () => run(argv, io));
}

runIfMain(import.meta.url, main);
