// merge-runs: the folders of `run-tests --shard k/N` (one per shard) -> one
// ordinary results folder, or one A/B parent with a folder per ref and their
// comparison in compare/, as the unsharded run would have written them.
//
//   ./merge-runs results/shard-1 results/shard-2 results/shard-3 --out results/merged
//   ./compare-runs results/merged/main results/merged/my-branch
//
// Exit 0 merged; with two or more refs, compare-runs' exit (1: a later ref
// is slower or fails more); 1 the suite failed; 2 bad input, including shards
// that do not belong together. The last line of stdout is the merged folder.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_THRESHOLDS } from './lib/stats/compare.ts';
import { compareFolder, writeComparison, writeJunit } from './lib/comparison.ts';
import { comparisonSuite, renderJunit } from './lib/render/junit.ts';
import { argvError } from './lib/argv-errors.ts';
import { InputError, PROCESS_IO, reportErrors, runIfMain, type Io } from './lib/errors.ts';
import { mergeShards, readShard, writeMerged } from './lib/merge.ts';
import { SUITE_DIR } from './lib/paths.ts';
import { createRunDir, makeOutputDir } from './lib/results.ts';

const HELP = `Usage: merge-runs SHARD... [--out DIR] [--allow-missing]

Merges the results folders of run-tests --shard k/N into one results folder
(raw.csv, config.json, report.md with its chart, failures.log), or, for a
run of two or more refs, one parent folder with a folder per ref and compare/
(compare-<ref>/ for each later ref with more than two: each against the
first, as run-tests --ref A --ref B writes it). Each SHARD is a shard's
results folder, its two-ref parent folder, or the --out folder holding one.

Refused (exit 2), with the reason: shards of different splits, a shard given
twice, another suite version, matrix, provider, refs or commits, a case in
two shards or a row outside its shard's cases, and missing cases (a shard not
given, or one that did not finish). When shards ran on different hosts,
report.md says so, with their fingerprints side by side.

Options:
  --out DIR          the merged folder: new, or empty (default: results/<YYYYMMDD-HHMMSS> beside this script)
  --allow-missing    merge without the missing cases; they are named on stderr and in report.md,
                     and config.json says finished: false
  --junit FILE       with two or more refs: also write the comparisons' verdicts as JUnit XML (see compare-runs --help)
  -h, --help         this text

Exit status: 0 merged; with two or more refs compare-runs' exit (1: a later ref
is slower or fails more often); 1 the suite failed; 2 bad input.
`;

export function main(argv: string[], io: Io = PROCESS_IO): Promise<number> {
  return reportErrors(io, () => run(argv, io));
}

async function run(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true,
      options: { out: { type: 'string' }, 'allow-missing': { type: 'boolean' }, junit: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    throw argvError(e, argv);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length === 0) throw new InputError('give the shard folders to merge (see --help)');
  const shards = positionals.map(readShard);
  for (const w of shards.flatMap((s) => s.sides.flatMap((side) => side.warnings))) io.stderr.write(`Warning: ${w}\n`);
  const merged = mergeShards(shards, { allowMissing: values['allow-missing'] ?? false });
  if (values.junit !== undefined && !merged.ab) throw new InputError('--junit: these shards ran one server; there is no comparison to report');
  for (const c of merged.merge.missing_cases) io.stderr.write(`Warning: missing: ${c}\n`);
  let out: string;
  if (values.out !== undefined) {
    out = path.resolve(values.out);
    makeOutputDir(out);
    if (fs.readdirSync(out).length > 0) throw new InputError(`--out ${values.out}: not empty; give a new or empty folder`);
  } else {
    out = createRunDir(path.join(SUITE_DIR, 'results'));
  }
  const dirs = await writeMerged(merged, out);
  if (merged.merge.hosts_differ) io.stderr.write('Warning: the shards ran on different hosts; report.md shows their fingerprints side by side\n');
  for (const d of dirs) io.stdout.write(`${d}\n`);
  let code = 0;
  if (merged.ab) {
    // Every later server against the first, as run-tests compares them (compare-<server>/ with more than two).
    const [base, ...cands] = merged.sides.map((s, i) => ({ dir: dirs[i], name: path.basename(dirs[i]), config: s.config, rows: s.rows, canary: s.canary }));
    const suites = [];
    for (const cand of cands) {
      const c = await writeComparison(base, cand, compareFolder(out, merged.sides.length, cand.dir), DEFAULT_THRESHOLDS, io);
      suites.push(comparisonSuite(c.comparison));
      code = Math.max(code, c.code);
    }
    if (values.junit !== undefined) writeJunit(values.junit, renderJunit(suites));
  }
  if (dirs.length > 1 || merged.ab) io.stdout.write(`${out}\n`);
  return code;
}

runIfMain(import.meta.url, main);
