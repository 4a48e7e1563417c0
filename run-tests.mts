// run-tests: runs the upload matrix (file sizes x memory limits) against the server under test and writes
// a results folder (raw.csv, report.md, failures.log, config.json), its path last on stdout. This is the
// recipe; the steps are in lib/run.ts.   ./run-tests --quick   ./run-tests --ref main --ref my-branch
// Exit: 0 the run completed (failed cases are results), 1 the suite could not run (or, with two refs,
// the second is slower), 2 bad input, 130/143 interrupted.
import crypto from 'node:crypto';
import { main as compareRuns } from './compare-runs.mts';
import { runDoctor } from './lib/doctor-probe.ts';
import { PROCESS_IO, reportErrors, runIfMain, type Io } from './lib/errors.ts';
import { buildImageCommand } from './lib/image.ts';
import { Interrupts } from './lib/interrupts.ts';
import { HELP, parseOptions } from './lib/options.ts';
import { Progress } from './lib/progress.ts';
import { selfCheck } from './lib/self-check.ts';
import {
  adaptiveRule, compareFolder, executeRun, finishRun, makeProvider, openRun, planCases, preflight, prepareGuestImage, prepareServers, prepareTestFiles, sharedSecret,
} from './lib/run.ts';

async function run(argv: string[], io: Io): Promise<number> {
  const opts = parseOptions(argv);
  if (opts === 'help') { io.stdout.write(HELP); return 0; }
  if (opts.mode === 'doctor') return runDoctor(opts.matrix, { fix: opts.fix }, (s) => io.stdout.write(s));
  if (opts.mode === 'build-image') return buildImageCommand(opts.matrix, (s) => io.stdout.write(s), (s) => io.stderr.write(s));
  if (opts.mode === 'self-check') return selfCheck(opts, io, main);
  const { matrix: m, resume } = opts;
  const progress = new Progress(io.stderr), say = (line: string) => progress.line(line);
  if (resume?.record.finished) {
    say(`${resume.dir} already finished (${resume.rows.length} rows, ended ${resume.record.ended_at}): nothing to resume, nothing changed`);
    return io.stdout.write(`${resume.dir}\n`), 0;
  }
  if (resume?.droppedPartialLine) say(`raw.csv ended in a cut-off line, dropped: ${resume.droppedPartialLine}`);
  preflight(m); // tools and a data folder: before anything is built or made

  // 1. Servers, test files, guest image. A signal waits for the step under way to clean up; no folder exists yet.
  const interrupts = new Interrupts(say).install();
  try {
    const stopped = () => interrupts.received !== null;
    const cases = planCases(m, opts.shard, opts.refs.length); // --shard k/N: this machine's whole cases
    const prepared = await (async () => {
      // A resume runs the stand-in with the knobs the run was started with, not today's environment.
      const sides = await prepareServers(m, opts.refs, opts.binaries, progress, resume?.record.server.standin_env);
      const files = await prepareTestFiles(m, cases, progress, stopped);
      return files && !stopped() ? { sides, files, image: await prepareGuestImage(m, say), secret: sharedSecret(say) } : null;
    })().catch((e: unknown) => { if (stopped()) return null; throw e; }); // a build the same Ctrl-C killed is the interruption
    if (!prepared || stopped()) return interrupts.exitCode() ?? 1;

    // 2. The results folders (config.json written, not finished) and the jobs: each case once per side, interleaved.
    const seed = opts.seed ?? crypto.randomInt(2 ** 31), shard = opts.shard && { shard: opts.shard, refs: opts.refs.length };
    const run = await openRun({ m, cases, shard, sides: prepared.sides, out: opts.out, argv, matrixFile: opts.matrixFile, seed, resume,
      rule: adaptiveRule(opts.adaptive, m, prepared.sides.length), stdout: (s) => io.stdout.write(s) }, say);
    const provider = makeProvider(m, prepared.sides[0].spec, prepared.secret, prepared.image, { signal: interrupts.signal });
    interrupts.startRun((sig) => { for (const s of run.sides) s.record.stop_reason = `interrupted by ${sig}`; }, () => provider.waitingFor());

    // 3. Every job, each row appended as measured; whatever happens, tear down and close the folders.
    try {
      await executeRun(run, provider, { ...prepared, m, signal: interrupts.signal, progress });
    } finally {
      await finishRun(run, provider, (s) => io.stdout.write(s));
    }
    if (!run.parent) return interrupts.exitCode() ?? 0;

    // 4. Two or more servers: each later one against the first (exit 1 when any is slower or fails more often).
    let code = interrupts.exitCode() ?? 0;
    for (const s of code === 0 ? run.sides.slice(1) : []) {
      code = Math.max(code, await compareRuns([run.sides[0].dir, s.dir, '--out', compareFolder(run, s)], io));
    }
    io.stdout.write(`${run.parent}\n`);
    return code;
  } finally {
    interrupts.uninstall();
  }
}

/** Runs the suite; every error becomes one "Error: ..." line and its exit code (2 bad input, 1 the suite could not run). */
export function main(argv: string[], io: Io = PROCESS_IO): Promise<number> {
  return reportErrors(io, () => run(argv, io));
}

runIfMain(import.meta.url, main);
