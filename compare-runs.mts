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
import { comparisonChartSvg } from './lib/charts.ts';
import { compareRuns, DEFAULT_THRESHOLDS, type Comparison, type Thresholds } from './lib/compare.ts';
import { compareJson, renderCompare } from './lib/compare-report.ts';
import { InputError, PROCESS_IO, reportErrors, runIfMain, type Io } from './lib/errors.ts';
import { comparisonSuite, renderJunit } from './lib/junit.ts';
import { loadRun } from './lib/load-run.ts';
import { makeOutputDir } from './lib/results.ts';
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

/** `onComparison` receives the comparison (run-tests gathers several into one JUnit file). */
export function main(argv: string[], io: Io = PROCESS_IO, onComparison?: (c: Comparison) => void): Promise<number> {
  return reportErrors(io, () => run(argv, io, onComparison));
}

async function run(argv: string[], io: Io, onComparison?: (c: Comparison) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { alpha: { type: 'string' }, noise: { type: 'string' }, out: { type: 'string' }, junit: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    // Node's hint for an unknown option ends in an unbalanced quote ('-- "--x"); a folder starting with '-' is rare.
    throw new InputError(`${(e as Error).message.replace(/\. To specify a positional argument[\s\S]*$/, '').replace(/\s*\n+\s*/g, ' ')} (see --help)`);
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
  const comparison = compareRuns(base, cand, thresholds);
  if (comparison.cases.length === 0) {
    throw new InputError(`no case in common between ${base.dir} and ${cand.dir} (cases are matched on file size and memory limit)`);
  }

  const outDir = path.resolve(values.out ?? path.join(SUITE_DIR, 'results', `compare-${base.name}-vs-${cand.name}`));
  // A results folder's throughput.svg is the chart its own report.md shows.
  if (fs.existsSync(path.join(outDir, 'raw.csv'))) {
    throw new InputError(`--out ${outDir} is a results folder: its own throughput.svg would be overwritten; give a folder of its own`);
  }
  makeOutputDir(outDir);
  const chart = 'throughput.svg';
  fs.writeFileSync(path.join(outDir, chart), await comparisonChartSvg(base, cand));
  const template = fs.readFileSync(path.join(SUITE_DIR, 'templates', 'compare.md.mustache'), 'utf8');
  const markdown = renderCompare(comparison, template, chart);
  fs.writeFileSync(path.join(outDir, 'compare.md'), markdown);
  fs.writeFileSync(path.join(outDir, 'compare.json'), compareJson(comparison));
  if (values.junit !== undefined) writeJunit(values.junit, renderJunit([comparisonSuite(comparison)]));
  onComparison?.(comparison);
  for (const w of comparison.warnings) io.stderr.write(`Warning: ${w}\n`);
  io.stdout.write(markdown);
  io.stdout.write(`${outDir}\n`);
  return comparison.exitCode;
}

/** Writes a JUnit file, making its folder; a folder given as FILE is bad input. */
export function writeJunit(file: string, xml: string): void {
  if (file.trim() === '') throw new InputError('--junit: give a file name');
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new InputError(`--junit ${file}: is a folder; give a file name`);
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, xml);
}

function numberOption(flag: string, raw: string | undefined, fallback: number, ok: (x: number) => boolean, what: string): number {
  if (raw === undefined) return fallback;
  const x = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(x) || !ok(x)) throw new InputError(`${flag} ${JSON.stringify(raw)}: expected ${what}`);
  return x;
}

runIfMain(import.meta.url, main);
