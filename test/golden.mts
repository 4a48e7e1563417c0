// Golden files for rendered reports: test/fixtures/runs/NAME.golden.md is the
// expected output; on a mismatch the actual output is written beside it as
// NAME.actual.md, to diff and, when right, copy over.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const RUNS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'runs');

export function assertGolden(actual: string, name: string): void {
  const goldenPath = path.join(RUNS, `${name}.golden.md`);
  const actualPath = path.join(RUNS, `${name}.actual.md`);
  const golden = fs.existsSync(goldenPath) ? fs.readFileSync(goldenPath, 'utf8') : '';
  if (actual !== golden) {
    fs.writeFileSync(actualPath, actual);
    assert.fail(`${name}.md differs from ${goldenPath}; actual output written to ${actualPath} (diff them, and copy over if right)`);
  }
  fs.rmSync(actualPath, { force: true });
}
