// How long an unchanged run of issue 28's matrix (100MiB and 500MiB at 512 and 256 MB,
// local provider: every limit's cases in each round) takes to end all `same`, by
// per-round paired SD: a seeded simulation through the real AdaptiveRounds with the
// pooled rule at the confidence run-tests gives that schedule. A job's cost is what the
// real runs measured here (v1.5.4, quiet machine): 500MiB 10.2 s (upload 6.8 s, verifying
// download 2.9 s, start and the rest 0.5 s), 100MiB 2.05 s. The figures it prints are
// the README's; the plan's expected look (lib/stats/plan.ts) is checked against them.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AdaptiveRounds } from '../lib/stats/adaptive.ts';
import { caseKey } from '../lib/cases.ts';
import { normalFrom, seededRandom } from '../lib/stats/interleave.ts';
import { pooledConfidence, pooledRule } from '../lib/stats/pooled.ts';
import { stoppingRule } from '../lib/stats/sequential.ts';
import { expectedLook } from '../lib/stats/plan.ts';
import type { RawRow } from '../lib/results.ts';

const JOB_SECONDS = { 524288000: 10.2, 104857600: 2.05 } as Record<number, number>;
/** The same jobs with no verifying download (upload, start and the rest). */
const JOB_SECONDS_UNVERIFIED = { 524288000: 7.3, 104857600: 1.6 } as Record<number, number>;
const CASES = [512, 256].flatMap((mem) => [524288000, 104857600].map((size) => ({ size, mem })));
const row = (size: number, mem: number, iteration: number, throughput: number) =>
  ({ file_size_bytes: size, memory_limit_mb: mem, concurrency: 1, iteration, exit_reason: 'success', throughput_mib_s: throughput, duration_seconds: 1 }) as RawRow;

describe('time to `same` on the 4-case matrix', { timeout: 300_000 }, () => {
  test('the share of unchanged runs done in 10 minutes, by paired SD', (t) => {
    const normal = normalFrom(seededRandom(20261207));
    const rule = stoppingRule({ alpha: 0.05, noisePct: 3, cases: CASES.length });
    const pooled = pooledRule({ noisePct: 3, cases: CASES.length, confidence: pooledConfidence(1) });
    const N = Number(process.env.TIME_TO_SAME_RUNS ?? 1000);
    const within10: Record<number, number> = {};
    let anySlower = 0;
    for (const sdPct of [4, 5, 6, 7, 8, 9]) {
      const s = Math.log(1 + sdPct / 100) / Math.SQRT2;
      const walls: number[] = [], unverified: number[] = [], looks: number[] = [];
      for (let m = 0; m < N; m++) {
        const rounds = new AdaptiveRounds(rule, 2, 1, pooled);
        let wall = 0, wallUnverified = 0;
        for (let it = 1; it <= 1 + rule.looks.at(-1)!; it++) {
          for (const { size, mem } of CASES) {
            if (rounds.stopped(caseKey({ file_size_bytes: size, memory_limit_mb: mem, concurrency: 1 }))) continue;
            wall += 2 * JOB_SECONDS[size];
            wallUnverified += 2 * JOB_SECONDS_UNVERIFIED[size];
            rounds.record(0, row(size, mem, it, 100 * Math.exp(s * normal())));
            rounds.record(1, row(size, mem, it, 100 * Math.exp(s * normal())));
          }
        }
        const all = rounds.all();
        if (all.some((x) => x.verdicts[0] === 'slower')) anySlower++;
        walls.push(wall);
        unverified.push(wallUnverified);
        looks.push(Math.max(...all.map((x) => x.rounds)));
      }
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
    }
    // An A/A: the family-wise promise holds here too.
    assert.ok(anySlower / (6 * N) <= 0.05, `A/A runs with some case slower: ${anySlower} of ${6 * N}`);
    // 10 minutes are about 10 rounds of this matrix: reached most of the time at 4-5%, rarely at this machine's 7-9%.
    assert.ok(within10[4] >= 0.85 && within10[5] >= 0.5, JSON.stringify(within10));
    assert.ok(within10[8] <= 0.1 && within10[9] <= 0.05, JSON.stringify(within10));
  });
});
