// How long an unchanged run of issue 28's matrix (100MiB and 500MiB at 512 and 256 MB,
// local provider: every limit's cases in each round) takes to end all `same`, by
// per-round paired SD: seeded runs simulated by the plan's own simulateUnchanged through
// the real AdaptiveRounds, with the pooled rule at the confidence run-tests gives that
// schedule. A job's cost is what the
// real runs measured here (v1.5.4, quiet machine): 500MiB 10.2 s (upload 6.8 s, verifying
// download 2.9 s, start and the rest 0.5 s), 100MiB 2.05 s. The figures it prints are
// the README's; the plan's expected look (lib/stats/plan.ts) is checked against them.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CaseStop } from '../lib/stats/adaptive.ts';
import { pooledConfidence, pooledRule } from '../lib/stats/pooled.ts';
import { stoppingRule } from '../lib/stats/sequential.ts';
import { expectedLook, expectedStops, simulateUnchanged } from '../lib/stats/plan.ts';

const JOB_SECONDS = { 524288000: 10.2, 104857600: 2.05 } as Record<number, number>;
/** The same jobs with no verifying download (upload, start and the rest). */
const JOB_SECONDS_UNVERIFIED = { 524288000: 7.3, 104857600: 1.6 } as Record<number, number>;
/** Issue 28's 4 cases, in the order a round runs them; the simulation indexes them so. */
const CASES = [512, 256].flatMap((mem) => [524288000, 104857600].map((size) => ({ size, mem })));

describe('time to `same` on the 4-case matrix', { timeout: 300_000 }, () => {
  test('the share of unchanged runs done in 10 minutes, by paired SD', (t) => {
    const rule = stoppingRule({ alpha: 0.05, noisePct: 3, cases: CASES.length });
    const pooled = pooledRule({ noisePct: 3, cases: CASES.length, confidence: pooledConfidence(1) });
    const N = Number(process.env.TIME_TO_SAME_RUNS ?? 1000);
    const within10: Record<number, number> = {};
    let anySlower = 0;
    for (const sdPct of [4, 5, 6, 7, 8, 9]) {
      const runs = simulateUnchanged({ sdPct, rule, pooled, cases: CASES.length, runs: N, seed: 20261207 + sdPct });
      // Each case runs its warm-up and its rounds, both sides.
      const wallOf = (stops: CaseStop[], jobSeconds: Record<number, number>) =>
        stops.reduce((a, x, c) => a + 2 * jobSeconds[CASES[c].size] * (1 + x.rounds), 0);
      anySlower += runs.filter((stops) => stops.some((x) => x.verdicts[0] === 'slower')).length;
      const walls = runs.map((stops) => wallOf(stops, JOB_SECONDS));
      const unverified = runs.map((stops) => wallOf(stops, JOB_SECONDS_UNVERIFIED));
      const looks = runs.map((stops) => Math.max(...stops.map((x) => x.rounds)));
      walls.sort((a, b) => a - b);
      looks.sort((a, b) => a - b);
      within10[sdPct] = walls.filter((w) => w <= 600).length / N;
      const planned = expectedLook(sdPct, rule, pooled, CASES.length);
      t.diagnostic(`paired SD ${sdPct}%: done in 10 min ${(100 * within10[sdPct]).toFixed(0)}%, median ${(walls[N >> 1] / 60).toFixed(1)} min, ` +
        `90th percentile ${(walls[Math.floor(N * 0.9)] / 60).toFixed(1)} min; the last case's rounds: median ${looks[N >> 1]}, the plan expects ${planned}; ` +
        `without the verifying downloads done in 10 min ${(100 * unverified.filter((w) => w <= 600).length / N).toFixed(0)}%`);
      // The plan's expected look is this median by its own smaller simulation (another seed): near 50% of runs
      // end by it, and not many more end before it. Where the median sits on the edge of two looks, either.
      const byPlanned = looks.filter((l) => l <= planned).length / N, beforePlanned = looks.filter((l) => l < planned).length / N;
      assert.ok(byPlanned >= 0.4 && beforePlanned <= 0.6, `SD ${sdPct}%: plan ${planned}; simulated runs ending by it ${byPlanned}, before it ${beforePlanned}`);
      // The plan's expected time sums each case's own expected rounds (the mean of 51 runs of its own): within 15% of
      // these 1000 runs' mean wall time.
      const perCase = expectedStops(CASES.map(() => sdPct), rule, pooled).perCase;
      const plannedWall = perCase.reduce((a, r, c) => a + 2 * JOB_SECONDS[CASES[c].size] * (1 + r), 0);
      const meanWall = walls.reduce((a, w) => a + w, 0) / N;
      t.diagnostic(`paired SD ${sdPct}%: the plan's expected wall ${(plannedWall / 60).toFixed(1)} min, the runs' mean ${(meanWall / 60).toFixed(1)} min`);
      assert.ok(Math.abs(plannedWall / meanWall - 1) <= 0.15, `SD ${sdPct}%: planned ${plannedWall} s, mean ${meanWall} s`);
    }
    // An A/A: the family-wise promise holds here too.
    assert.ok(anySlower / (6 * N) <= 0.05, `A/A runs with some case slower: ${anySlower} of ${6 * N}`);
    // 10 minutes are about 10 rounds of this matrix: reached most of the time at 4-5%, rarely at this machine's 7-9%.
    assert.ok(within10[4] >= 0.85 && within10[5] >= 0.5, JSON.stringify(within10));
    assert.ok(within10[8] <= 0.1 && within10[9] <= 0.05, JSON.stringify(within10));
  });
});
