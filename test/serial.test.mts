// The serial-correlation check (lib/stats/serial.ts) on literal data, and what
// compare-runs does with it: the warning in compare.md, the figure in
// compare.json, a verdict that does not survive the widening made
// inconclusive. Its effect on the family-wise rate is simulated in
// test/family.test.mts (AR(1) rounds).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { lag1, serialCheck, serialP, widen } from '../lib/stats/serial.ts';
import { compareRuns } from '../lib/stats/compare.ts';
import { compareJson, renderCompare } from '../lib/render/compare-report.ts';
import { parseRunRecord } from '../lib/run-record.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { row as rawRow } from './raw-row.mts';

describe('serial correlation', { timeout: 60_000 }, () => {
  test('lag-1 autocorrelation, the pooled check, the widening', () => {
    // 1, 2, 3, 4, 5: mean 3, deviations -2..2; lag products -2*-1 + -1*0 + 0*1 + 1*2 = 4 over 10.
    assert.equal(lag1([1, 2, 3, 4, 5]), 0.4);
    assert.equal(lag1([1, -1, 1, -1]), -0.75);
    assert.equal(lag1([2, 2, 2]), 0);
    // Too short for the check: null.
    assert.equal(serialCheck([[1, 2, 3]]), null);
    // Alternating rounds (this machine's negative lag-1): not present, no widening.
    const alternating = Array.from({ length: 20 }, (_, i) => (i % 2 ? 0.01 : -0.01));
    const neg = serialCheck([alternating, alternating])!;
    assert.equal(neg.present, false);
    assert.equal(neg.inflation, 1);
    // Slow waves in every case: strongly positive, found; the factor is (1 + r1) / (1 - r1) with r1 capped at 0.9.
    const wave = Array.from({ length: 24 }, (_, i) => Math.sin(i / 4) / 100);
    const pos = serialCheck([wave, wave, wave])!;
    assert.equal(pos.cases, 3);
    assert.equal(pos.rounds, 72);
    assert.ok(pos.present && pos.z > 3, JSON.stringify(pos));
    const phi = Math.min(0.9, pos.r1);
    assert.ok(Math.abs(pos.inflation - (1 + phi) / (1 - phi)) < 1e-12);
    // Widening: 4x the variance doubles the interval about its estimate.
    assert.deepEqual(widen({ estimate: 0.1, lo: 0.05, hi: 0.2 }, 4), { estimate: 0.1, lo: 0, hi: 0.30000000000000004 });
    // p from the mean: 1..5 has mean 3, SD sqrt(2.5), so t = 3 / sqrt(2.5 / 5) = sqrt(18), and sqrt(18) / 2 at 4x the
    // variance. At 4 df the t CDF is closed: F(t) = 1/2 + (3/8) u (1 - u^2 / 12), u = t / sqrt(1 + t^2 / 4).
    const twoSided4df = (t: number) => { const u = t / Math.sqrt(1 + t * t / 4); return 1 - 2 * (3 / 8) * u * (1 - u * u / 12); };
    assert.ok(Math.abs(serialP([1, 2, 3, 4, 5], 1) - twoSided4df(Math.sqrt(18))) < 1e-9, String(serialP([1, 2, 3, 4, 5], 1)));
    assert.ok(Math.abs(serialP([1, 2, 3, 4, 5], 4) - twoSided4df(Math.sqrt(18) / 2)) < 1e-9, String(serialP([1, 2, 3, 4, 5], 4)));
    assert.equal(serialP([0.5, 0.5, 0.5], 4), 0);
    assert.equal(serialP([0, 0, 0], 4), 1);
  });

  test('compare-runs: correlated rounds are said, recorded, and a verdict that does not survive is inconclusive', () => {
    // One case, 30 paired rounds, the candidate 5% slower with a slow wave of 5% on top (lag-1 near 0.9): fixed-n
    // Holm calls it slower (every round is below 1, signed-rank p 2e-9); its mean, the variance widened about 20x, is not.
    const rows = (side: number) => Array.from({ length: 31 }, (_, i) => {
      const t = side === 0 ? 100 : 100 * 0.95 * Math.exp(0.05 * Math.sin(i / 3));
      return rawRow({ iteration: i + 1, throughput_mib_s: t, duration_seconds: 100 / t });
    });
    const config = (i: number) => parseRunRecord({ schema: 1, matrix: { warmup_iterations: 1 }, ab: { refs: ['a', 'b'], this_ref: i, seed: 1, parent: '/r/x' } }, 'config.json');
    const c = compareRuns({ name: 'a', config: config(0), rows: rows(0) }, { name: 'b', config: config(1), rows: rows(1) });
    assert.ok(c.serial?.present, JSON.stringify(c.serial));
    assert.ok(c.serial.r1 > 0.5, JSON.stringify(c.serial));
    assert.equal(c.cases[0].verdict, 'inconclusive');
    assert.equal(c.exitCode, 0);
    const json = JSON.parse(compareJson(c));
    assert.equal(json.serial.present, true);
    assert.equal(json.serial.cases, 1);
    assert.ok(json.serial.variance_factor > 1);
    const md = renderCompare(c, fs.readFileSync(path.join(SUITE_DIR, 'templates', 'compare.md.mustache'), 'utf8'), 'x.svg');
    assert.match(md, /Rounds not independent: consecutive paired throughput ratios are correlated \(lag-1 0\.\d\d over 1 case\(s\), 30 rounds; z = \d+\.\d\)/);
    // The same rows without the wave: independent, judged slower as before, and compare.json says the check found nothing.
    const flat = (side: number) => rows(side).map((r, i) => ({ ...r, throughput_mib_s: side === 0 ? 100 : 95 * (1 + (i % 3) * 0.001) }));
    const d = compareRuns({ name: 'a', config: config(0), rows: flat(0) }, { name: 'b', config: config(1), rows: flat(1) });
    assert.equal(d.serial?.present, false);
    assert.equal(d.cases[0].verdict, 'slower');
  });

  test('compare-runs: a change far beyond the noise survives the check, however few its rounds', () => {
    // What a real run showed (test/junit.test.mts): correlated rounds found (lag-1 0.48 over 26 rounds) and an 8MiB case
    // slowed 100%, decided at 10 rounds, made inconclusive. Ten rounds all one way give a signed-rank p of 0.002 however
    // large the change, and that p shrunk by the widening no longer passed. Here the same: 10 rounds slowed 100% and 16
    // unchanged, both with a slow wave in their ratios.
    const wave = (i: number) => Math.exp(0.04 * Math.sin(i / 2));
    const rows = (side: number) => [
      ...Array.from({ length: 11 }, (_, i) => rawRow({ iteration: i + 1, file_size: '8MiB', file_size_bytes: 8 * 2 ** 20, throughput_mib_s: side === 0 ? 100 : 50 * wave(i) })),
      ...Array.from({ length: 17 }, (_, i) => rawRow({ iteration: i + 1, file_size: '1MiB', file_size_bytes: 2 ** 20, throughput_mib_s: side === 0 ? 100 : 100 * wave(i) })),
    ];
    const config = (i: number) => parseRunRecord({ schema: 1, matrix: { warmup_iterations: 1 }, ab: { refs: ['a', 'b'], this_ref: i, seed: 1, parent: '/r/x' } }, 'config.json');
    const c = compareRuns({ name: 'a', config: config(0), rows: rows(0) }, { name: 'b', config: config(1), rows: rows(1) });
    assert.ok(c.serial?.present && c.serial.rounds === 26, JSON.stringify(c.serial));
    const slowed = c.cases.find((k) => k.fileSize === '8MiB')!;
    assert.equal(slowed.verdict, 'slower');
    assert.ok(slowed.metrics[0].hiPct! < -40, JSON.stringify(slowed.metrics[0]));
    assert.equal(c.exitCode, 1);
  });
});
