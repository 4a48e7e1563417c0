// merge-runs: the folders of `run-tests --shard k/N` (one per shard) -> one
// ordinary results folder, or one A/B parent with a folder per ref and their
// comparison in compare/, as the unsharded run would have written them.
//
//   ./merge-runs results/shard-1 results/shard-2 results/shard-3 --out results/merged
//   ./compare-runs results/merged/main results/merged/my-branch
//
// Exit 0 merged; with two or more refs, compare-runs' largest exit (1: a later
// ref is slower or fails more); 1 the suite failed; 2 bad input, including shards
// that do not belong together. The last line of stdout is the merged folder.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { main as compareRuns } from './compare-runs.mts';
import { InputError, PROCESS_IO, reportErrors, runIfMain, type Io } from './lib/errors.ts';
import { mergeShards, readShard, writeMerged } from './lib/merge.ts';
import { SUITE_DIR } from './lib/paths.ts';
import { createRunDir, makeOutputDir } from './lib/results.ts';

const HELP = `Usage: merge-runs SHARD... [--out DIR] [--allow-missing]

Merges the results folders of run-tests --shard k/N into one results folder
(raw.csv, config.json, report.md with its chart, failures.log), or, for a
run of several refs, one parent folder with a folder per ref and compare/
(or compare-<ref>/ for each later ref of more than two), as run-tests writes them. Each SHARD is a shard's
results folder, its two-ref parent folder, or the --out folder holding one.

Refused (exit 2), with the reason: shards of different splits, a shard given
twice, another suite version, matrix, provider, refs, commits or stopping
rule (adaptive rounds: one family for the whole matrix), a case in
two shards or a row outside its shard's cases, and missing cases (a shard not
given, or one that did not finish). When shards ran on different hosts,
report.md says so, with their fingerprints side by side.

Options:
  --out DIR          the merged folder: new, or empty (default: results/<YYYYMMDD-HHMMSS> beside this script)
  --allow-missing    merge without the missing cases; they are named on stderr and in report.md,
                     and config.json says finished: false
  -h, --help         this text

Exit status: 0 merged; with several refs compare-runs' largest exit (1: a later
ref is slower or fails more often); 1 the suite failed; 2 bad input.
`;

export function main(argv: string[], io: Io = PROCESS_IO): Promise<number> {
  return reportErrors(io, () => run(argv, io));
}

async function run(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true,
      options: { out: { type: 'string' }, 'allow-missing': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    throw new InputError(`${(e as Error).message.replace(/\s*\n+\s*/g, ' ')} (see --help)`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length === 0) throw new InputError('give the shard folders to merge (see --help)');
  const merged = mergeShards(positionals.map(readShard), { allowMissing: values['allow-missing'] ?? false });
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
  // Each later ref against the first, as run-tests writes them (compare/, or compare-<ref>/ for more than two):
  // the family of the recorded stopping rule covers every one of these comparisons.
  for (const d of merged.ab ? dirs.slice(1) : []) {
    const folder = dirs.length > 2 ? `compare-${path.basename(d)}` : 'compare';
    code = Math.max(code, await compareRuns([dirs[0], d, '--out', path.join(out, folder)], io));
  }
  if (dirs.length > 1 || merged.ab) io.stdout.write(`${out}\n`);
  return code;
}

runIfMain(import.meta.url, main);
