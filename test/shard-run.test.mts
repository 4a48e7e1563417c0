// The sharded path end to end, through the real executables: 3 shards of a
// two-ref matrix of the fixture server (fast and slow commit, built with go)
// run as separate processes side by side, then ./merge-runs. The merged folder
// holds every case exactly once per ref, and its comparison equals that of the
// same rows put together by hand as one unsharded run (same verdict rule, same
// case set), and each shard's own comparison case by case. The slow commit is
// slower in every case by construction, by far more than the machine's jitter,
// and with enough rounds to say so: every shard and the merge must call every
// case slower and exit 1.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { compareRuns, type Comparison } from '../lib/stats/compare.ts';
import { loadRun } from '../lib/load-run.ts';
import { expandCases, loadMatrixFile } from '../lib/matrix.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { caseKey } from '../lib/cases.ts';
import { sideFolderNames } from '../lib/run.ts';
import { FIXTURE_BUILD_COMMAND, hasGo, makeFixtureRepo } from './fixture-repo.mts';
import { needs } from './skips.mts';

const SHARDS = 3;
// The slow commit sleeps 40 ms per MiB in storing (test/fixture-repo.mts): 0.32-1.3 s here. At load 20-30 on 2 cores
// the fast commit's 8 MiB took 0.4-0.5 s against 0.75 s (every round slower), while 2 MiB (80 ms) drowned in the
// jitter (0.12-0.47 s: inconclusive, p 0.055). Paired rounds' exact signed-rank test: n pairs all one way give
// p = 2 / 2^n, and Holm multiplies the smallest by the number of cases (3 merged); 9 measured pairs (one warm-up)
// give 3 x 2/512 = 0.012 < 0.05, and still 0.023 with one pair the wrong way round.
const ITERATIONS = 10;

function runTests(args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(path.join(SUITE_DIR, 'run-tests'), args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

/** What a comparison decides, without the run names and configs it carries. */
function decision(c: Comparison) {
  return {
    cases: c.cases.map((k) => ({ case: `${k.fileSize}@${k.memoryLimit}`, verdict: k.verdict, failures: k.failures, p: k.metrics[0].p, change: k.metrics[0].changePct })),
    onlyOneSide: c.onlyOneSide, counts: c.counts, geomean: c.throughputGeomean, inconclusive: c.inconclusive, exitCode: c.exitCode,
  };
}

test('3 shards of a two-ref run side by side, merged: every case once, the comparison of the same rows unsharded', { timeout: 1_200_000 }, async (t) => {
  if (!(await hasGo())) return t.skip(needs('go', 'go is not installed (Go 1.22+ is needed to build the fixture server\'s two refs)'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shard-run-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const repo = await makeFixtureRepo(path.join(tmp, 'repo'));
  const matrixPath = path.join(tmp, 'matrix.yaml');
  fs.writeFileSync(matrixPath, [
    'sizes: [32MiB, 16MiB, 8MiB]', 'memory_limits: [512]', `iterations: ${ITERATIONS}`, 'provider: local',
    'server:', '  source: repo', `  build: ${JSON.stringify(FIXTURE_BUILD_COMMAND)}`, '',
  ].join('\n'));
  const env = { UPS_CACHE_DIR: path.join(tmp, 'cache') };
  const refs = ['--ref', repo.fastCommit, '--ref', 'main', '--iterations', String(ITERATIONS)];
  const names = sideFolderNames([repo.fastCommit, 'main']);

  const runs = await Promise.all(Array.from({ length: SHARDS }, (_, i) =>
    runTests(['--matrix', matrixPath, ...refs, '--shard', `${i + 1}/${SHARDS}`, '--seed', String(i + 1), '--out', path.join(tmp, `shard-${i + 1}`)], tmp, env)));
  const parents = runs.map((r, i) => {
    const parent = r.stdout.trim().split('\n').at(-1)!;
    // Exit 1: this shard's own comparison calls its case slower.
    assert.equal(r.code, 1, `shard ${i + 1}: exit 1 (slower) expected\n${r.stderr.slice(-3000)}`);
    assert.ok(fs.existsSync(path.join(parent, 'compare', 'compare.md')), `shard ${i + 1}: its compare.md`);
    return parent;
  });

  const merged = path.join(tmp, 'merged');
  const m = spawnSync(path.join(SUITE_DIR, 'merge-runs'), [...Array.from({ length: SHARDS }, (_, i) => path.join(tmp, `shard-${i + 1}`)), '--out', merged], { encoding: 'utf8' });
  assert.equal(m.status, 1, `merge-runs: exit 1 (slower) expected\n${m.stderr}`);
  assert.equal(m.stdout.trim().split('\n').at(-1), merged);
  assert.deepEqual(fs.readdirSync(merged).sort(), [...names, 'compare'].sort());

  // Every case of the matrix exactly once per ref: each (case, iteration) one row.
  const matrix = loadMatrixFile(matrixPath);
  const expected = expandCases(matrix).map((c) => `${caseKey(c)}#${c.iteration}`).sort();
  const sides = names.map((n) => loadRun(path.join(merged, n)));
  for (const s of sides) {
    assert.deepEqual(s.rows.map((r) => `${caseKey(r)}#${r.iteration}`).sort(), expected, s.name);
    assert.equal(s.config?.finished, true);
  }

  // The same rows as one unsharded run: each ref's rows of all shards, with the run's settings, compared by hand.
  const shardSides = parents.map((p) => names.map((n) => loadRun(path.join(p, n))));
  const byHand = names.map((n, i) => ({ name: n, config: shardSides[0][i].config, rows: shardSides.flatMap((s) => s[i].rows) }));
  const mergedComparison = compareRuns(sides[0], sides[1]);
  assert.deepEqual(decision(mergedComparison), decision(compareRuns(byHand[0], byHand[1])));
  assert.equal(mergedComparison.cases.length, matrix.sizes.length * matrix.memoryLimitsMb.length, 'every case compared');
  assert.deepEqual(mergedComparison.cases.map((k) => k.verdict), mergedComparison.cases.map(() => 'slower'), 'every case slower');
  assert.equal(m.status, mergedComparison.exitCode, 'merge-runs exits with the merged comparison\'s code');

  // Each case's verdict is the one its own shard's comparison gave.
  const perShard = new Map(shardSides.flatMap((s) => compareRuns(s[0], s[1]).cases.map((k) => [`${k.fileSize}@${k.memoryLimit}`, [k.verdict, k.failures]])));
  assert.deepEqual(new Map(mergedComparison.cases.map((k) => [`${k.fileSize}@${k.memoryLimit}`, [k.verdict, k.failures]])), perShard);
  t.diagnostic(`merged verdicts: ${mergedComparison.cases.map((k) => `${k.fileSize}@${k.memoryLimit} ${k.verdict}`).join(', ')}; exit ${m.status}`);

  // compare-runs takes the merged folders like any other.
  const c = spawnSync(path.join(SUITE_DIR, 'compare-runs'), [path.join(merged, names[0]), path.join(merged, names[1]), '--out', path.join(tmp, 'cmp')], { encoding: 'utf8' });
  assert.equal(c.status, mergedComparison.exitCode, c.stderr);
  assert.equal(fs.readFileSync(path.join(tmp, 'cmp', 'compare.md'), 'utf8'), fs.readFileSync(path.join(merged, 'compare', 'compare.md'), 'utf8'));
});
