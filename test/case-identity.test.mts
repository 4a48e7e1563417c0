// The case (file size x memory limit x uploads at once) is one identity
// everywhere: the adaptive rule's family counts every case a run judges, and
// shards of a matrix with concurrency merge. Both ran through the real
// run-tests and merge-runs against the stand-in; both failed while the case
// was spelled without its concurrency in lib/run.ts and lib/shard.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { main as runTests } from '../run-tests.mts';
import { main as mergeRuns } from '../merge-runs.mts';
import { caseKey, caseOf, parseCaseKey } from '../lib/cases.ts';
import { expandCases, parseMatrix } from '../lib/matrix.ts';
import { readRunRecord } from '../lib/load-run.ts';
import { parseRawCsv } from '../lib/results.ts';
import { serverWrapper } from './run-helpers.mts';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-case-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

function io() {
  let out = '';
  let err = '';
  return { io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } }, out: () => out, err: () => err };
}

test('the case key: one spelling for plans and rows, read back by parseCaseKey', () => {
  const m = parseMatrix('sizes: [2MiB, 1MiB]\nmemory_limits: [512, 256]\nconcurrency: [1, 4]\n', 'm.yaml');
  const keys = [...new Set(expandCases(m).map(caseKey))];
  assert.equal(keys.length, 8);
  assert.ok(keys.includes(`${2 ** 21}@512x4`) && keys.includes(`${2 ** 20}@256`), keys.join(' '));
  for (const k of keys) assert.equal(caseKey(parseCaseKey(k)!), k);
  // A row and the plan entry it measures share the key.
  assert.equal(caseKey({ file_size_bytes: 2 ** 20, memory_limit_mb: 256, concurrency: 4 }), caseKey(caseOf({ size: { bytes: 2 ** 20 }, memoryMb: 256, concurrency: 4 })));
  assert.equal(parseCaseKey('12@x'), null);
});

test('a 2 x 2 x concurrency [1, 4] adaptive run records 8 cases in its stopping rule', { timeout: 600_000 }, async () => {
  const a = await serverWrapper(scratch, 'a', '');
  const b = await serverWrapper(scratch, 'b', '');
  const c = io();
  const code = await runTests(['--binary', a, '--binary', b, '--sizes', '1MiB,2MiB', '--memory', '512,256', '--concurrency', '1,4',
    '--max-iterations', '7', '--provider', 'local', '--out', scratch, '--seed', '3'], c.io);
  assert.ok(code === 0 || code === 1, c.err());
  const parent = c.out().trim().split('\n').at(-1)!;
  const record = readRunRecord(path.join(parent, 'a'))!;
  assert.equal(record.ab?.stopping_rule?.cases, 8, 'every case the run judges is in the family');
  const rows = parseRawCsv(fs.readFileSync(path.join(parent, 'b', 'raw.csv'), 'utf8'), 'raw.csv');
  assert.equal(new Set(rows.map(caseKey)).size, 8);
});

test('--shard 1/2 and --shard 2/2 of a concurrency [1, 2] run merge into every case once', { timeout: 600_000 }, async () => {
  const parents: string[] = [];
  for (const k of [1, 2]) {
    const c = io();
    const code = await runTests(['--sizes', '1MiB,2MiB', '--memory', '256', '--concurrency', '1,2', '--iterations', '2',
      '--provider', 'local', '--shard', `${k}/2`, '--out', path.join(scratch, `shard-${k}`)], c.io);
    assert.equal(code, 0, c.err());
    parents.push(c.out().trim().split('\n').at(-1)!);
  }
  const c = io();
  const code = await mergeRuns([...parents, '--out', path.join(scratch, 'merged')], c.io);
  assert.equal(code, 0, c.err());
  const merged = c.out().trim().split('\n').at(-1)!;
  const rows = parseRawCsv(fs.readFileSync(path.join(merged, 'raw.csv'), 'utf8'), 'raw.csv');
  const perCase = new Map<string, number>();
  for (const r of rows) perCase.set(caseKey(r), (perCase.get(caseKey(r)) ?? 0) + 1);
  // 2 iterations of each case; a case of 2 at once writes a row per upload.
  assert.deepEqual(Object.fromEntries(perCase), {
    [`${2 ** 21}@256`]: 2, [`${2 ** 21}@256x2`]: 4, [`${2 ** 20}@256`]: 2, [`${2 ** 20}@256x2`]: 4,
  });
});
