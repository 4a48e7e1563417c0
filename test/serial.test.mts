// The serial-correlation check (lib/stats/serial.ts) on literal data, and what
// compare-runs does with it: the warning in compare.md, the figure in
// compare.json, a verdict that does not survive the widening made
// inconclusive. Its effect on the family-wise rate is simulated in
// test/family.test.mts (AR(1) rounds).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { lag1, serialCheck, widen, widenP } from '../lib/stats/serial.ts';
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
    // Widening: 4x the variance doubles the interval about its estimate; p of z = 1.96 becomes p of z = 0.98.
    assert.deepEqual(widen({ estimate: 0.1, lo: 0.05, hi: 0.2 }, 4), { estimate: 0.1, lo: 0, hi: 0.30000000000000004 });
    assert.ok(Math.abs(widenP(0.05, 4) - 0.3271) < 1e-3, String(widenP(0.05, 4)));
    assert.equal(widenP(0.05, 1), 0.05);
  });

  test('compare-runs: correlated rounds are said, recorded, and a verdict that does not survive is inconclusive', () => {
    // One case, 30 paired rounds, the candidate 5% slower with a slow wave on top (lag-1 near 0.9): fixed-n Holm
    // calls it slower; widened about 4x it is not.
    const rows = (side: number) => Array.from({ length: 31 }, (_, i) => {
      const t = side === 0 ? 100 : 100 * 0.95 * Math.exp(0.03 * Math.sin(i / 3));
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
});
