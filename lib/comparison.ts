// A comparison's folder: compare-runs' verdicts (lib/stats/compare.ts) on two runs
// already in memory, written as compare.md, compare.json and throughput.svg,
// with the Markdown and the folder on stdout. compare-runs calls it on folders
// it loaded; run-tests and merge-runs on the rows they have just written.
//
//   const code = await writeComparison(base, cand, 'results/x/compare', DEFAULT_THRESHOLDS, io)
import fs from 'node:fs';
import path from 'node:path';
import { comparisonChartSvg } from './render/charts.ts';
import { compareRuns, type Comparison, type RunInput, type Thresholds } from './stats/compare.ts';
import { compareJson, renderCompare } from './render/compare-report.ts';
import { InputError, type Io } from './errors.ts';
import { SUITE_DIR } from './paths.ts';
import { makeOutputDir } from './results.ts';

/** One side of a comparison: its rows and record, and the folder they came from (for messages). */
export type ComparedRun = RunInput & { dir: string };

/** Compares, writes the folder, prints; the exit code (1: slower or failing more). */
export async function writeComparison(base: ComparedRun, cand: ComparedRun, outDir: string, thresholds: Thresholds, io: Io): Promise<{ code: number; comparison: Comparison }> {
  const comparison = compareRuns(base, cand, thresholds);
  if (comparison.cases.length === 0) {
    throw new InputError(`no case in common between ${base.dir} and ${cand.dir} (cases are matched on file size and memory limit)`);
  }
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
  for (const w of comparison.warnings) io.stderr.write(`Warning: ${w}\n`);
  io.stdout.write(markdown);
  io.stdout.write(`${outDir}\n`);
  return { code: comparison.exitCode, comparison };
}

/** Writes a JUnit file (lib/render/junit.ts renders it), making its folder; a folder given as FILE is bad input. */
export function writeJunit(file: string, xml: string): void {
  if (file.trim() === '') throw new InputError('--junit: give a file name');
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new InputError(`--junit ${file}: is a folder; give a file name`);
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, xml);
}

/** Where a side's comparison with the first side goes: compare/, or compare-<side>/ when there are more than two. */
export function compareFolder(parent: string, sides: number, sideDir: string): string {
  return path.join(parent, sides > 2 ? `compare-${path.basename(sideDir)}` : 'compare');
}
