// .ci/run's check of a test run's skips: `node --import tsx test/skip-check.mts TAP_LOG`.
// Prints how many tests skipped and why; exits 1 when one skipped that CI is set up to run
// (test/skips.mts: CI_MAY_SKIP), or when the log holds no summary to count from.
import fs from 'node:fs';
import { CI_MAY_SKIP, readSkips, unexpectedSkips } from './skips.mts';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node --import tsx test/skip-check.mts TAP_LOG\n');
  process.exit(2);
}
const { skips, summaryCount } = readSkips(fs.readFileSync(file, 'utf8'));
if (summaryCount === null) {
  process.stderr.write(`Error: ${file} has no "# skipped N" summary: not node's TAP output, or the run did not finish\n`);
  process.exit(1);
}
process.stderr.write(`skipped: ${summaryCount} test(s)\n`);
for (const s of skips) process.stderr.write(`  skip: ${s.name}: ${s.reason || '(no reason)'}\n`);
const bad = unexpectedSkips(skips);
if (bad.length > 0) {
  process.stderr.write(`Error: ${bad.length} test(s) skipped that CI is set up to run (only [needs ${CI_MAY_SKIP.join('|')}] may skip here):\n`);
  for (const s of bad) process.stderr.write(`  ${s.name}: ${s.reason || '(no reason)'}\n`);
  process.exit(1);
}
if (skips.length !== summaryCount) {
  process.stderr.write(`Error: the summary counts ${summaryCount} skipped but ${skips.length} skip lines were read\n`);
  process.exit(1);
}
