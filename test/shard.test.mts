// --shard k/N: parsing (flags and the CI engines' variables) and the
// assignment rule of lib/shard.ts: stable, complete, disjoint, every iteration
// and ref of a case in one shard, and balanced within a stated bound on the
// shipped matrix.yaml for N = 2, 4 and 8 and on seeded random matrices.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { InputError } from '../lib/errors.ts';
import { seededRandom, interleave } from '../lib/stats/interleave.ts';
import { expandCases, loadMatrixFile, PROVIDERS, type Matrix } from '../lib/matrix.ts';
import { parseOptions } from '../lib/options.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { caseKey } from '../lib/cases.ts';
import { BOOT_BYTES, parseShard, planShards, shardCases, shardRecord } from '../lib/shard.ts';

const shipped = loadMatrixFile(path.join(SUITE_DIR, 'matrix.yaml'));

/** The lower bound on the heaviest shard's work: the mean (each limit booted at least once), or the heaviest case with its boot. */
function lowerBound(m: Matrix, total: number, refs: number): number {
  const perCase = m.sizes.map((s) => s.bytes * m.iterations * Math.max(1, refs));
  const all = perCase.reduce((a, b) => a + b, 0) * m.memoryLimitsMb.length;
  const boot = BOOT_BYTES[m.provider];
  return Math.max((all + m.memoryLimitsMb.length * boot) / total, Math.max(...perCase) + boot);
}

function randomMatrix(seed: number): Matrix {
  const r = seededRandom(seed);
  const sizes = new Map<number, { label: string; bytes: number }>();
  const nSizes = 1 + Math.floor(r() * 7);
  while (sizes.size < nSizes) {
    const bytes = Math.floor(2 ** (20 + r() * 13));
    sizes.set(bytes, { label: `${bytes}B`, bytes });
  }
  const mems = new Set<number>();
  const nMems = 1 + Math.floor(r() * 5);
  while (mems.size < nMems) mems.add(128 * (1 + Math.floor(r() * 32)));
  return {
    ...shipped, sizes: [...sizes.values()], memoryLimitsMb: [...mems], iterations: 1 + Math.floor(r() * 8),
    provider: PROVIDERS[Math.floor(r() * PROVIDERS.length)],
  };
}

const refuses = (f: () => unknown, message: RegExp) => assert.throws(f, (e: Error) => e instanceof InputError && message.test(e.message));

describe('shard', { timeout: 60_000 }, () => {
  test('parseShard: k/N from the flag, auto from CircleCI, GitLab or a Kubernetes Indexed Job; bad values refused with the reason', () => {
    assert.deepEqual(parseShard('2/4', {}), { index: 2, total: 4, source: '--shard 2/4' });
    assert.deepEqual(parseShard(' 1/1 ', {}), { index: 1, total: 1, source: '--shard 1/1' });
    assert.deepEqual(parseShard('auto', { CIRCLE_NODE_INDEX: '0', CIRCLE_NODE_TOTAL: '3' }),
      { index: 1, total: 3, source: 'CIRCLE_NODE_INDEX=0 CIRCLE_NODE_TOTAL=3' });
    assert.deepEqual(parseShard('auto', { JOB_COMPLETION_INDEX: '7', UPS_SHARD_TOTAL: '8' }),
      { index: 8, total: 8, source: 'JOB_COMPLETION_INDEX=7 UPS_SHARD_TOTAL=8' });
    refuses(() => parseShard('0/4', {}), /--shard 0\/4: the shard must be from 1 to 4 \(shards are numbered from 1\)/);
    refuses(() => parseShard('5/4', {}), /must be from 1 to 4/);
    refuses(() => parseShard('1/0', {}), /number of shards must be 1 or more/);
    refuses(() => parseShard('2of4', {}), /expected k\/N .* or auto \(got "2of4"\)/);
    refuses(() => parseShard('auto', {}), /no CI shard variables .*strategy\.job-total/);
    refuses(() => parseShard('auto', { JOB_COMPLETION_INDEX: '1' }), /UPS_SHARD_TOTAL is not: set it to the Job's spec.completions/);
    refuses(() => parseShard('auto', { CIRCLE_NODE_INDEX: '4', CIRCLE_NODE_TOTAL: '4' }), /CIRCLE_NODE_INDEX=4, CIRCLE_NODE_TOTAL=4\): the shard must be from 1 to 4/);
    refuses(() => parseShard('auto', { CIRCLE_NODE_INDEX: 'x', CIRCLE_NODE_TOTAL: '4' }), /CIRCLE_NODE_INDEX="x" is not a whole number/);
    // GitLab parallel: N numbers its jobs from 1; a job without parallel has only CI_NODE_TOTAL=1.
    assert.deepEqual(parseShard('auto', { CI_NODE_INDEX: '3', CI_NODE_TOTAL: '4' }), { index: 3, total: 4, source: 'CI_NODE_INDEX=3 CI_NODE_TOTAL=4' });
    assert.deepEqual(parseShard('auto', { CI_NODE_TOTAL: '1' }), { index: 1, total: 1, source: 'CI_NODE_INDEX=1 CI_NODE_TOTAL=1' });
    refuses(() => parseShard('auto', { CI_NODE_TOTAL: '4' }), /CI_NODE_INDEX="" is not a whole number/);
    refuses(() => parseShard('auto', { CI_NODE_INDEX: '0', CI_NODE_TOTAL: '4' }), /CI_NODE_INDEX=0, CI_NODE_TOTAL=4\): the shard must be from 1 to 4/);
  });

  test('run-tests options: --shard parsed, more shards than cases refused before anything starts', () => {
    const o = parseOptions(['--quick', '--shard', '2/3']);
    assert.ok(o !== 'help');
    assert.deepEqual(o.shard, { index: 2, total: 3, source: '--shard 2/3' });
    assert.equal((parseOptions(['--quick']) as { shard: unknown }).shard, null);
    refuses(() => parseOptions(['--quick', '--shard', '5/5']), /the matrix has only 4 cases .* use at most 4 shards/);
  });

  test('complete and disjoint: every case in exactly one shard, every shard non-empty (shipped and 200 random matrices, N = 1..cases)', () => {
    const matrices = [shipped, ...Array.from({ length: 200 }, (_, i) => randomMatrix(i + 1))];
    for (const m of matrices) {
      const ids = m.memoryLimitsMb.flatMap((mem) => m.sizes.map((s) => caseKey({ bytes: s.bytes, memoryMb: mem, concurrency: 1 }))).sort();
      for (let n = 1; n <= ids.length; n++) {
        const plan = planShards(m, n, 2);
        const got = plan.flatMap((s) => s.cases.map((c) => caseKey(c))).sort();
        assert.deepEqual(got, ids, `N=${n}`);
        for (const s of plan) assert.ok(s.cases.length > 0, `N=${n}: an empty shard`);
      }
    }
  });

  test('stable: the same matrix and N give the same assignment, whatever order sizes and limits are listed in', () => {
    const m = shipped;
    const shuffled: Matrix = { ...m, sizes: [...m.sizes].reverse(), memoryLimitsMb: [m.memoryLimitsMb[2], m.memoryLimitsMb[0], m.memoryLimitsMb[3], m.memoryLimitsMb[1]] };
    for (const n of [2, 3, 4, 8]) {
      const a = planShards(m, n, 2).map((s) => s.cases.map((c) => caseKey(c)));
      assert.deepEqual(planShards(m, n, 2).map((s) => s.cases.map((c) => caseKey(c))), a);
      assert.deepEqual(planShards(shuffled, n, 2).map((s) => s.cases.map((c) => caseKey(c))), a, `N=${n}`);
      for (let k = 1; k <= n; k++) assert.deepEqual(shardRecord(m, { index: k, total: n, source: 'x' }, 2), shardRecord(m, { index: k, total: n, source: 'x' }, 2));
    }
  });

  test('every iteration (warm-up included) and both refs of a case run in its one shard', () => {
    const m = shipped;
    for (const n of [2, 4, 8]) {
      const owner = new Map<string, number>();
      const all: string[] = [];
      for (let k = 1; k <= n; k++) {
        const cases = shardCases(m, { index: k, total: n, source: 'x' }, 2);
        for (const c of cases) {
          const id = caseKey(c);
          assert.equal(owner.get(id) ?? k, k, `${id} in shards ${owner.get(id)} and ${k}`);
          owner.set(id, k);
          all.push(`${id}#${c.iteration}`);
        }
        // run-tests interleaves both refs per iteration: each (case, iteration) of the shard gets both sides here.
        const sides = new Map<string, number[]>();
        for (const j of interleave(cases, 2, 5)) {
          const key = `${caseKey(j.case)}#${j.case.iteration}`;
          sides.set(key, [...(sides.get(key) ?? []), j.side]);
        }
        for (const [key, s] of sides) assert.deepEqual(s.sort(), [0, 1], key);
      }
      const expected = expandCases(m).map((c) => `${caseKey(c)}#${c.iteration}`);
      assert.deepEqual(all.sort(), expected.sort(), `N=${n}: the shards' iterations are the matrix's, each once`);
    }
  });

  test('balanced: on the shipped matrix the heaviest shard is within 10% of the lower bound, N = 2, 4, 8, every provider; boots grouped by memory limit', () => {
    for (const provider of PROVIDERS) {
      const m = { ...shipped, provider };
      for (const n of [2, 4, 8]) {
        const plan = planShards(m, n, 2);
        const worst = Math.max(...plan.map((s) => s.work));
        const lb = lowerBound(m, n, 2);
        assert.ok(worst <= 1.1 * lb, `${provider} N=${n}: heaviest ${worst} > 1.1 x ${lb}`);
        // Each memory limit boots once per shard it appears in; grouping keeps the total at limits + N - 1 or fewer.
        const boots = plan.reduce((t, s) => t + s.boots, 0);
        assert.ok(boots <= m.memoryLimitsMb.length + n - 1, `${provider} N=${n}: ${boots} boots`);
        for (const s of plan) assert.equal(s.work, s.uploadBytes + s.boots * BOOT_BYTES[provider]);
      }
    }
  });

  test('balanced on 300 random matrices: heaviest shard <= mean work + heaviest case + one boot (the greedy rule\'s guarantee)', () => {
    for (let seed = 1000; seed < 1300; seed++) {
      const m = randomMatrix(seed);
      const cases = m.sizes.length * m.memoryLimitsMb.length;
      for (const n of [2, 4, 8].filter((x) => x <= cases)) {
        const plan = planShards(m, n, 1);
        const total = plan.reduce((t, s) => t + s.work, 0);
        const heaviestCase = Math.max(...m.sizes.map((s) => s.bytes)) * m.iterations;
        const worst = Math.max(...plan.map((s) => s.work));
        assert.ok(worst <= total / n + heaviestCase + BOOT_BYTES[m.provider], `seed ${seed} N=${n}: ${worst}`);
      }
    }
  });
});
