// The skip check .ci/run applies to node's TAP output: real `node --test`
// output of a file whose tests skip with and without tags, read back; the
// check's exit code says whether a skip CI must not have is among them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { SUITE_DIR } from '../lib/paths.ts';
import { needs, readSkips, unexpectedSkips } from './skips.mts';

/** node --test's TAP output (stdout a pipe, as under .ci/run's tee) for a test file with `body`. */
function tapOf(dir: string, body: string): string {
  const file = path.join(dir, 'x.test.mjs');
  fs.writeFileSync(file, `import { describe, test } from 'node:test';\n${body}\n`);
  // Without NODE_TEST_CONTEXT, which would make the child report to this runner instead of printing TAP.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  return spawnSync(process.execPath, ['--test', file], { cwd: dir, env, encoding: 'utf8' }).stdout;
}

function check(log: string) {
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(SUITE_DIR, 'test/skip-check.mts'), log], { cwd: SUITE_DIR, encoding: 'utf8' });
}

test('readSkips: each skipped test with its reason and tag, nested ones too, and the summary count', { timeout: 60_000 }, (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-skips-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tap = tapOf(dir, [
    "test('runs # here', () => {});",
    `test('no real server', (t) => { t.skip(${JSON.stringify(needs('picoshare', 'set PICOSHARE_BIN # or SRC'))}); });`,
    `describe('suite', () => { test('no cgroup', (t) => { t.skip(${JSON.stringify(needs('root', 'not root'))}); }); });`,
    "test('bare', (t) => { t.skip(); });",
    `test('unknown tag', { skip: '[needs coffee] later' }, () => {});`,
  ].join('\n'));
  const { skips, summaryCount } = readSkips(tap);
  assert.equal(summaryCount, 4, tap);
  assert.deepEqual(skips, [
    { name: 'no real server', reason: '[needs picoshare] set PICOSHARE_BIN # or SRC', tag: 'picoshare' },
    { name: 'no cgroup', reason: '[needs root] not root', tag: 'root' },
    { name: 'bare', reason: '', tag: null },
    { name: 'unknown tag', reason: '[needs coffee] later', tag: null },
  ]);
  assert.deepEqual(unexpectedSkips(skips).map((s) => s.name), ['no cgroup', 'bare', 'unknown tag']);
});

test('test/skip-check.mts: exit 0 with only the skips CI may have, 1 with a root skip, 1 without a summary', { timeout: 60_000 }, (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-skips-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'tap.log');
  fs.writeFileSync(log, tapOf(dir, [
    "test('runs', () => {});",
    `test('old node', (t) => { t.skip(${JSON.stringify(needs('node18', 'NODE18_BIN is not set'))}); });`,
  ].join('\n')));
  const ok = check(log);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stderr, /^skipped: 1 test\(s\)\n {2}skip: old node: \[needs node18\] NODE18_BIN is not set\n$/);

  fs.writeFileSync(log, tapOf(dir, `test('oom', (t) => { t.skip(${JSON.stringify(needs('root', 'no memory cgroup'))}); });`));
  const bad = check(log);
  assert.equal(bad.status, 1, bad.stderr);
  assert.match(bad.stderr, /^skipped: 1 test\(s\)\n/);
  assert.match(bad.stderr, /Error: 1 test\(s\) skipped that CI is set up to run \(only \[needs picoshare\|node18\|uid\] may skip here\):\n {2}oom: \[needs root\] no memory cgroup\n$/);

  fs.writeFileSync(log, 'TAP version 13\nok 1 - a\n');
  const cut = check(log);
  assert.equal(cut.status, 1);
  assert.match(cut.stderr, /has no "# skipped N" summary/);
});
