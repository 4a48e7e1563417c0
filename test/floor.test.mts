// The memory floor's search on literal data: the probe sequence for a known
// floor (every place in a small range enumerated), the ends of the range, a
// flaky edge, an interrupted probe, the verdicts between two floors, the probes
// read back from raw.csv rows, and the worst case the VM estimate uses.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compareFloors, floorOf, nextProbe, probesFromRows, resolutionMb, withTry, worstCase, type FloorSettings, type Probe } from '../lib/stats/floor.ts';
import { row } from './raw-row.mts';

const S: FloorSettings = { bottomMb: 16, topMb: 4096, tries: 3 };

/** Runs the search against an oracle (limit -> each try's outcome), returning the probes. */
function search(s: FloorSettings, ok: (limitMb: number, attempt: number) => boolean): Probe[] {
  let probes: Probe[] = [];
  for (let n = nextProbe(s, probes), guard = 0; n; n = nextProbe(s, probes), guard++) {
    assert.ok(guard < 100, 'the search ends');
    const already = probes.find((p) => p.limitMb === n!.limitMb)?.passed ?? 0;
    for (let t = 0; t < n.tries; t++) {
      const good = ok(n.limitMb, already + t);
      probes = withTry(probes, n.limitMb, good ? { ok: true } : { ok: false, failure: 'oom_killed (upload)' });
      if (!good) break;
    }
  }
  return probes;
}

describe('memory floor search', () => {
  test('a floor inside the range: bracket within the resolution, geometric steps, no probe at either end', () => {
    const probes = search(S, (mb) => mb >= 137);
    assert.deepEqual(probes.map((p) => p.limitMb), [256, 64, 128, 181, 152, 139, 133]);
    const f = floorOf(S, probes);
    assert.equal(f.status, 'floor');
    assert.equal(f.floorMb, 139); // (133, 139]: 6 MB, within 5% of 139
    assert.equal(f.highestFailingMb, 133);
    assert.equal(f.failedPhase, 'oom_killed (upload)');
    assert.equal(f.flaky, null);
  });

  test('every floor of a small range is bracketed: fail < true floor <= pass, to 4 MB or 5%', () => {
    const s = { bottomMb: 16, topMb: 600, tries: 2 };
    for (let floor = 16; floor <= 601; floor++) {
      const f = floorOf(s, search(s, (mb) => mb >= floor));
      if (floor === 16) { assert.equal(f.status, 'at-bottom'); continue; }
      if (floor === 601) { assert.equal(f.status, 'no-floor'); assert.equal(f.highestFailingMb, 600); continue; }
      assert.equal(f.status, 'floor', `floor ${floor}`);
      assert.ok(f.floorMb! >= floor && (f.highestFailingMb ?? 15) < floor, `floor ${floor}: (${f.highestFailingMb}, ${f.floorMb}]`);
      assert.ok(f.floorMb! - (f.highestFailingMb ?? 16) <= resolutionMb(f.floorMb!), `floor ${floor}: bracket (${f.highestFailingMb}, ${f.floorMb}] too wide`);
    }
  });

  test('survives the bottom: floor = the range\'s bottom, said so', () => {
    const probes = search(S, () => true);
    assert.equal(probes.at(-1)!.limitMb, 16);
    const f = floorOf(S, probes);
    assert.equal(f.status, 'at-bottom');
    assert.equal(f.floorMb, 16);
    assert.equal(f.highestFailingMb, null);
  });

  test('fails the top: no floor, the top probed once', () => {
    const probes = search(S, () => false);
    assert.equal(probes.at(-1)!.limitMb, 4096);
    assert.ok(probes.every((p) => p.passed === 0 && p.failed === 1));
    const f = floorOf(S, probes);
    assert.equal(f.status, 'no-floor');
    assert.equal(f.floorMb, null);
    assert.equal(f.highestFailingMb, 4096);
  });

  test('a flaky edge: a limit where some tries passed is a failure, and its band is reported', () => {
    // 120..139 MB: the second try fails; from 140 every try passes.
    const probes = search(S, (mb, t) => mb >= 140 || (mb >= 120 && t === 0));
    const f = floorOf(S, probes);
    assert.equal(f.status, 'floor');
    assert.ok(f.floorMb! >= 140 && f.floorMb! <= 147);
    assert.ok(f.flaky && f.flaky.fromMb >= 120 && f.flaky.toMb < 140, JSON.stringify(f.flaky));
  });

  test('an interrupted probe is finished first, with only its missing tries', () => {
    const probes: Probe[] = [{ limitMb: 256, passed: 3, failed: 0, failure: null }, { limitMb: 64, passed: 1, failed: 0, failure: null }];
    assert.deepEqual(nextProbe(S, probes), { limitMb: 64, tries: 2 });
    assert.equal(floorOf(S, probes).status, 'incomplete');
  });

  test('verdicts: more memory, less, same within resolution + flaky band; no floor above any floor', () => {
    const at = (floorMb: number | null, status: 'floor' | 'no-floor' | 'at-bottom' = 'floor', flaky: { fromMb: number; toMb: number } | null = null) =>
      ({ status, floorMb, highestFailingMb: null, failedPhase: null, flaky, probes: [] });
    assert.equal(compareFloors(S, at(100), at(140)).verdict, 'needs more memory');
    assert.equal(compareFloors(S, at(140), at(100)).verdict, 'needs less');
    assert.equal(compareFloors(S, at(100), at(105)).verdict, 'same'); // 5 MB: within 5% of 105 (5.25 MB)
    assert.equal(compareFloors(S, at(100), at(106)).verdict, 'needs more memory'); // 6 MB: beyond 5.3 MB
    assert.equal(compareFloors(S, at(100, 'floor', { fromMb: 90, toMb: 120 }), at(130)).verdict, 'same'); // 30 MB < 6.5 + 30 (the band)
    assert.equal(compareFloors(S, at(100, 'floor', { fromMb: 90, toMb: 120 }), at(140)).verdict, 'needs more memory'); // 40 MB > 7 + 30
    assert.equal(compareFloors(S, at(100), at(null, 'no-floor')).verdict, 'needs more memory');
    assert.equal(compareFloors(S, at(null, 'no-floor'), at(null, 'no-floor')).verdict, 'same');
    assert.equal(compareFloors(S, at(16, 'at-bottom'), at(16, 'at-bottom')).verdict, 'same');
  });

  test('probes read back from raw.csv rows: per limit, in the order run; N uploads at once are one try', () => {
    const rows = [
      row({ memory_limit_mb: 256, iteration: 1, started_at: '2026-12-06T20:00:01Z' }),
      row({ memory_limit_mb: 256, iteration: 2, started_at: '2026-12-06T20:00:02Z' }),
      row({ memory_limit_mb: 64, iteration: 1, started_at: '2026-12-06T20:00:03Z', exit_reason: 'oom_killed', failure_phase: 'processing' }),
      row({ memory_limit_mb: 128, iteration: 1, started_at: '2026-12-06T20:00:04Z', concurrency: 2 }),
      row({ memory_limit_mb: 128, iteration: 1, started_at: '2026-12-06T20:00:04Z', concurrency: 2, exit_reason: 'oom_killed', failure_phase: 'upload' }),
    ];
    assert.deepEqual(probesFromRows(rows), [
      { limitMb: 256, passed: 2, failed: 0, failure: null },
      { limitMb: 64, passed: 0, failed: 1, failure: 'oom_killed (processing)' },
      { limitMb: 128, passed: 0, failed: 1, failure: 'oom_killed (upload)' },
    ]);
  });

  test('the worst case of a search, for the VM estimate', () => {
    const w = worstCase({ bottomMb: 64, topMb: 1024, tries: 3 });
    assert.ok(w.probes >= 6 && w.probes <= 9, JSON.stringify(w));
    assert.ok(w.tries <= w.probes * 3);
    assert.deepEqual(worstCase({ bottomMb: 100, topMb: 102, tries: 2 }), { probes: 2, tries: 4 });
  });
});
