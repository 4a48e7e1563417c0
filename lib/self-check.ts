// ./run-tests --self-check: how well can this machine tell two servers apart?
// Two interleaved, adaptive runs of the stand-in on the local provider at one
// memory limit: against itself (A/A: nothing may be called faster or slower)
// and against itself slowed by 10% (STANDIN_SLOWDOWN_PCT=10: it must be found
// slower). Then, from the A/A's spread, the smallest change this machine tells
// apart in a given time. Exit 1 when the 10% is not found or the A/A is not quiet.
//
// Each side is a tiny wrapper script around the stand-in, run as a server
// binary (--binary), so both runs take exactly the path a user's comparison does.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Comparison } from './stats/compare.ts';
import type { Io } from './errors.ts';
import { parseOptions, type Options } from './options.ts';
import type { RawRow } from './row.ts';
import { cachedStandinBundle } from './standin/standin-bundle.ts';
import { sd, detectable } from './stats/verdict.ts';

/** What the self-check measures with: small enough for minutes, large enough that the upload, not the start, dominates. */
export const SELF_CHECK = { size: '32MiB', memoryMb: 1024, slowdownPct: 10 } as const;

/** The case the self-check (and the bench's time to verdict) runs, with its results under `out`. */
export const SELF_CHECK_ARGS = (out: string) => ['--sizes', SELF_CHECK.size, '--memory', String(SELF_CHECK.memoryMb), '--provider', 'local', '--out', out];

/** Two server scripts in `dir` for --binary: the stand-in, and the stand-in slowed by `slowdownPct`. */
export async function standinPair(dir: string, slowdownPct: number): Promise<{ a: string; b: string }> {
  const bundle = await cachedStandinBundle();
  const wrapper = (name: string, env: string) => {
    const file = path.join(dir, name);
    // Every interface, as PicoShare binds: the local provider runs a server binary in a network namespace of its own.
    fs.writeFileSync(file, `#!/bin/sh\nexport STANDIN_HOST=0.0.0.0 ${env}\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(bundle)} "$@"\n`, { mode: 0o755 });
    return file;
  };
  return { a: wrapper('standin', ''), b: wrapper(`standin-slowed-${slowdownPct}pct`, `STANDIN_SLOWDOWN_PCT=${slowdownPct}`) };
}

interface Outcome { verdict: string; rounds: number; minutes: number; parent: string; logRatios: number[] }

/** run-tests' runSuite, passed in: a run's exit code, its sides' rows in memory and its comparisons. */
type RunSuite = (opts: Options, argv: string[], io: Io) => Promise<{ code: number; run: { parent: string | null; sides: { rows: RawRow[] }[] } | null; comparisons: Comparison[] }>;

export async function selfCheck(opts: Options, io: Io, main: RunSuite): Promise<number> {
  const say = (s: string) => io.stderr.write(`${s}\n`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-self-check-'));
  try {
    const { a, b } = await standinPair(tmp, SELF_CHECK.slowdownPct);
    const common = SELF_CHECK_ARGS(opts.out);
    say(`self-check: A/A, the stand-in against itself (${SELF_CHECK.size} at ${SELF_CHECK.memoryMb} MB, interleaved, adaptive)`);
    const aa = await comparison(main, io, ['--binary', a, '--binary', a, ...common]);
    say(`self-check: A/B, the stand-in against itself slowed by ${SELF_CHECK.slowdownPct}%`);
    const ab = await comparison(main, io, ['--binary', a, '--binary', b, ...common]);
    const quiet = aa.verdict !== 'faster' && aa.verdict !== 'slower';
    const found = ab.verdict === 'slower';
    const perMinute = aa.rounds / Math.max(aa.minutes, 1e-9);
    const mde = (rounds: number) => detectable(sd(aa.logRatios), rounds, true, 0.05, 3, 6)?.pct;
    const lines = [
      `A/A: ${aa.verdict} after ${aa.rounds} rounds in ${aa.minutes.toFixed(1)} min: ${quiet ? 'quiet, as it must be' : 'NOT quiet: this machine calls a server different from itself'} (${aa.parent})`,
      `A/B ${SELF_CHECK.slowdownPct}% slower: ${ab.verdict} after ${ab.rounds} rounds in ${ab.minutes.toFixed(1)} min: ${found ? 'found' : 'NOT found'} (${ab.parent})`,
      `smallest change this machine tells apart (80% of the time, from the A/A's spread, ${perMinute.toFixed(1)} rounds a minute): ` +
        [1, 5, 10, 30].map((min) => `${min} min ${fmtPct(mde(Math.max(6, Math.floor(perMinute * min))))}`).join(', '),
    ];
    io.stdout.write(`${lines.join('\n')}\n`);
    return quiet && found ? 0 : 1;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const fmtPct = (x: number | undefined) => (x === undefined ? '?' : `${x.toFixed(1)}%`);

/** One interleaved run through run-tests' runSuite, its progress passed on; its verdict, rounds and wall time, from the rows in memory. */
async function comparison(main: RunSuite, io: Io, argv: string[]): Promise<Outcome> {
  const opts = parseOptions(argv);
  if (opts === 'help') throw new Error('self-check: --help in its own arguments');
  const t0 = Date.now();
  const { code, run, comparisons } = await main(opts, argv, { stdout: { write: () => true }, stderr: io.stderr });
  const minutes = (Date.now() - t0) / 60_000;
  if (code > 1 || !run?.parent || comparisons.length === 0) throw new Error(`self-check: the run did not complete (exit ${code})`);
  const rows = (side: { rows: RawRow[] }) => side.rows.filter((r) => r.iteration > 1 && r.throughput_mib_s);
  const a = new Map(rows(run.sides[0]).map((r) => [r.iteration, r.throughput_mib_s!]));
  const logRatios = rows(run.sides[1]).filter((r) => a.has(r.iteration)).map((r) => Math.log(r.throughput_mib_s! / a.get(r.iteration)!));
  return { verdict: comparisons[0].cases[0]?.verdict ?? 'no data', rounds: logRatios.length, minutes, parent: run.parent, logRatios };
}
