// compare-runs: two results folders -> a Markdown comparison on stdout, written
// with its chart into a folder of its own, and an exit code.
//
//   ./compare-runs results/20261124-101500 results/20261124-113000
//
// Exit 0 nothing regressed (or the samples cannot tell: the verdict says
// "inconclusive"), 1 a case slower (after Holm across the cases) or failing
// more often, 2 bad input. The last line of stdout is the comparison's folder.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_THRESHOLDS, type Thresholds } from './lib/stats/compare.ts';
import { writeComparison, writeJunit } from './lib/comparison.ts';
import { argvError } from './lib/argv-errors.ts';
import { InputError, PROCESS_IO, reportErrors, runIfMain, type Io } from './lib/errors.ts';
import { comparisonSuite, renderJunit } from './lib/render/junit.ts';
import { loadRun } from './lib/load-run.ts';
import { SUITE_DIR } from './lib/paths.ts';

const HELP = `Usage: compare-runs BASELINE CANDIDATE [options]

Compares two results folders written by run-tests, case by case (file size x
memory limit), and prints a Markdown comparison: per metric the change
(candidate / baseline) as "-4.1% [-9.0%, +0.8%]" with its 95% interval, the
p-value adjusted across the cases (Holm), and a verdict:
  faster/slower  adjusted p < alpha, the interval excludes 0, and the change
                 is at least the noise band
  same           the whole interval lies inside ±noise
  inconclusive   anything else; it says the smallest change the sample could
                 detect and the iterations that would detect the noise band
Two sides of one interleaved run (run-tests --ref A --ref B) are compared
round by round (paired); two separate runs as independent samples.
Exit 0 when nothing regressed (inconclusive included), 1 when a case is
slower or fails more often than in the baseline, 2 on bad input.

Options:
  --alpha P     family-wise significance level across the cases (default ${DEFAULT_THRESHOLDS.alpha})
  --noise PCT   the noise band in percent: smaller changes are not called (default ${DEFAULT_THRESHOLDS.noisePct})
  --out DIR     folder for compare.md, compare.json and throughput.svg
                (default results/compare-BASELINE-vs-CANDIDATE in the suite's folder)
  --junit FILE  also write the verdicts as JUnit XML, for a CI's test view: a testcase per
                case and metric, failed when slower or failing more, skipped when inconclusive
  -h, --help    this text
`;

export function main(argv: string[], io: Io = PROCESS_IO): Promise<number> {
  return reportErrors(io, () => run(argv, io));
}

async function run(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { alpha: { type: 'string' }, noise: { type: 'string' }, out: { type: 'string' }, junit: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    throw argvError(e, argv);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 2) throw new InputError(`expected two results folders, got ${positionals.length} (see --help)`);
  const thresholds: Thresholds = {
    alpha: numberOption('--alpha', values.alpha, DEFAULT_THRESHOLDS.alpha, (x) => x > 0 && x < 1, 'between 0 and 1'),
    noisePct: numberOption('--noise', values.noise, DEFAULT_THRESHOLDS.noisePct, (x) => x >= 0, 'a percentage >= 0'),
  };

  const [realBase, realCand] = positionals.map((p) => (fs.existsSync(p) ? fs.realpathSync(p) : path.resolve(p)));
  if (realBase === realCand) {
    throw new InputError(`BASELINE and CANDIDATE are the same folder (${realBase}): a run compared with itself shows no change whatever the server did`);
  }
  const base = loadRun(positionals[0]);
  const cand = loadRun(positionals[1]);
  for (const w of [...base.warnings, ...cand.warnings]) io.stderr.write(`Warning: ${w}\n`);
  const outDir = path.resolve(values.out ?? path.join(SUITE_DIR, 'results', `compare-${base.name}-vs-${cand.name}`));
  const { code, comparison } = await writeComparison(base, cand, outDir, thresholds, io);
  if (values.junit !== undefined) writeJunit(values.junit, renderJunit([comparisonSuite(comparison)]));
  return code;
}

function numberOption(flag: string, raw: string | undefined, fallback: number, ok: (x: number) => boolean, what: string): number {
  if (raw === undefined) return fallback;
  const x = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(x) || !ok(x)) throw new InputError(`${flag} ${JSON.stringify(raw)}: expected ${what}`);
  return x;
}

runIfMain(import.meta.url, main);
