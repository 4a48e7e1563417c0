// What a memory-floor run writes: floor.json (schema in issue 30), floor.md,
// the comparison of each later server with the first (compare.md and
// compare.json), and the "memory floor" section of each server's report.md.
// Pure: the searches' results in, JSON values and Markdown out.
//   const entries = [{ server: '1.2.0', fileSize: '500MiB', fileSizeBytes, concurrency: 1, seconds: 41.2, result }]
//   writeFileAtomic('floor.md', renderFloorMd(settings, entries, verdictsOf(settings, entries, servers), 'floor.svg', template))
import Mustache from 'mustache';
import { compareFloors, describeFloor, type FloorResult, type FloorSettings, type FloorVerdict } from '../stats/floor.ts';

/** One search: a server, a file size at a concurrency, its result and the wall time it took. */
export interface FloorEntry {
  server: string;
  fileSize: string;
  fileSizeBytes: number;
  concurrency: number;
  seconds: number;
  result: FloorResult;
}

export interface FloorCompareCase {
  fileSize: string;
  fileSizeBytes: number;
  concurrency: number;
  baseline: FloorEntry;
  candidate: FloorEntry;
  verdict: FloorVerdict;
  deltaMb: number | null;
  thresholdMb: number;
}

const sizeOf = (e: Pick<FloorEntry, 'fileSize' | 'concurrency'>) => (e.concurrency > 1 ? `${e.fileSize} ×${e.concurrency}` : e.fileSize);
const sameSearch = (a: FloorEntry, b: FloorEntry) => a.fileSizeBytes === b.fileSizeBytes && a.concurrency === b.concurrency;

/** Each later server's searches against the first server's, case by case. */
export function compareServers(s: FloorSettings, entries: FloorEntry[], servers: string[]): { server: string; cases: FloorCompareCase[] }[] {
  const base = entries.filter((e) => e.server === servers[0]);
  return servers.slice(1).map((server) => ({
    server,
    cases: entries.filter((e) => e.server === server).flatMap((c) => {
      const b = base.find((x) => sameSearch(x, c));
      if (!b) return [];
      const v = compareFloors(s, b.result, c.result);
      return [{ fileSize: c.fileSize, fileSizeBytes: c.fileSizeBytes, concurrency: c.concurrency, baseline: b, candidate: c, ...v }];
    }),
  }));
}

/** Exit 1 when any later server needs more memory for any case, or any search found no floor in the range. */
export function floorExitCode(entries: FloorEntry[], comparisons: { cases: FloorCompareCase[] }[]): 0 | 1 {
  const more = comparisons.some((c) => c.cases.some((x) => x.verdict === 'needs more memory'));
  return more || entries.some((e) => e.result.status === 'no-floor') ? 1 : 0;
}

/** floor.json: the settings, and per search the floor, the bracket's low end, the flaky band and how it failed there. */
export function floorJson(s: FloorSettings, entries: FloorEntry[], memoryLimitsMb: number[]): object {
  return {
    range_mb: [s.bottomMb, s.topMb],
    tries: s.tries,
    resolution: '4 MB or 5% of the limit, whichever is larger',
    matrix_memory_limits_mb: memoryLimitsMb,
    floors: entries.map((e) => ({
      server: e.server,
      file_size: e.fileSize,
      file_size_bytes: e.fileSizeBytes,
      concurrency: e.concurrency,
      status: e.result.status,
      floor_mb: e.result.floorMb,
      highest_failing_mb: e.result.highestFailingMb,
      flaky_mb: e.result.flaky ? [e.result.flaky.fromMb, e.result.flaky.toMb] : null,
      failed_phase: e.result.failedPhase,
      seconds: Math.round(e.seconds * 10) / 10,
      probes: e.result.probes.map((p) => ({ memory_limit_mb: p.limitMb, passed: p.passed, failed: p.failed, failure: p.failure })),
    })),
  };
}

const probeText = (s: FloorSettings, e: FloorEntry) =>
  e.result.probes.map((p) => `${p.limitMb}${p.failed ? (p.passed ? '~' : '✗') : p.passed >= s.tries ? '✓' : '…'}`).join(' ');

const row = (s: FloorSettings, e: FloorEntry) => ({
  server: e.server, size: sizeOf(e),
  floor: e.result.status === 'no-floor' ? `none ≤ ${s.topMb}` : e.result.status === 'at-bottom' ? `≤ ${s.bottomMb}` : e.result.floorMb === null ? '–' : String(e.result.floorMb),
  bracket: e.result.floorMb !== null && e.result.highestFailingMb !== null ? `(${e.result.highestFailingMb}, ${e.result.floorMb}]`
    : e.result.floorMb !== null ? `(–, ${e.result.floorMb}]` : e.result.highestFailingMb !== null ? `(${e.result.highestFailingMb}, –)` : '–',
  flaky: e.result.flaky ? `${e.result.flaky.fromMb}${e.result.flaky.toMb !== e.result.flaky.fromMb ? `..${e.result.flaky.toMb}` : ''}` : '–',
  phase: e.result.failedPhase ?? '–',
  minutes: (e.seconds / 60).toFixed(1),
  probes: probeText(s, e),
  says: describeFloor(s, e.result),
});

export function renderFloorMd(
  s: FloorSettings, entries: FloorEntry[], comparisons: { server: string; cases: FloorCompareCase[] }[], chartFile: string | null, template: string,
): string {
  const view = {
    range: `${s.bottomMb}..${s.topMb} MB`, tries: s.tries, chartFile,
    rows: entries.map((e) => row(s, e)),
    notes: entries.filter((e) => e.result.status !== 'floor').map((e) => ({ text: `${e.server} ${sizeOf(e)}: ${describeFloor(s, e.result)}` })),
    comparisons: comparisons.map((c) => ({ server: c.server, baseline: entries[0]?.server, cases: c.cases.map(compareView) })),
  };
  return Mustache.render(template, view, undefined, { escape: (x: string) => x });
}

const compareView = (c: FloorCompareCase) => ({
  size: sizeOf(c), verdict: c.verdict,
  baseline: c.baseline.result.floorMb === null ? 'none' : String(c.baseline.result.floorMb),
  candidate: c.candidate.result.floorMb === null ? 'none' : String(c.candidate.result.floorMb),
  delta: c.deltaMb === null ? '–' : `${c.deltaMb > 0 ? '+' : ''}${c.deltaMb}`,
  threshold: c.thresholdMb,
});

/** compare.md of a floor run: one later server against the first. */
export function renderFloorCompareMd(baseline: string, candidate: string, cases: FloorCompareCase[]): string {
  const lines = [
    `# Memory floor: ${candidate} against ${baseline}`,
    '',
    'Floors in MB (the lowest limit every try survived). `needs more memory` when the candidate\'s floor is higher by more than the resolution (4 MB or 5%) plus both flaky bands; `needs less` when lower by as much; `same` otherwise. No floor in the range counts as above its top.',
    '',
    '| file size | baseline | candidate | change (MB) | threshold (MB) | verdict |',
    '|---|---:|---:|---:|---:|---|',
    ...cases.map(compareView).map((c) => `| ${c.size} | ${c.baseline} | ${c.candidate} | ${c.delta} | ${c.threshold} | ${c.verdict} |`),
    '',
  ];
  return lines.join('\n');
}

export function floorCompareJson(baseline: string, candidate: string, cases: FloorCompareCase[]): object {
  return {
    kind: 'memory-floor', baseline, candidate,
    cases: cases.map((c) => ({
      file_size: c.fileSize, file_size_bytes: c.fileSizeBytes, concurrency: c.concurrency,
      baseline_floor_mb: c.baseline.result.floorMb, candidate_floor_mb: c.candidate.result.floorMb,
      baseline_status: c.baseline.result.status, candidate_status: c.candidate.result.status,
      delta_mb: c.deltaMb, threshold_mb: c.thresholdMb, verdict: c.verdict,
    })),
  };
}

/** The "memory floor" section of one server's report.md. */
export function floorReportSection(s: FloorSettings, entries: FloorEntry[], floorMd: string): string {
  return [
    '',
    '## Memory floor',
    '',
    `This run searched the memory floor (${s.bottomMb}..${s.topMb} MB, ${s.tries} of ${s.tries} tries per limit): every probed limit is a case above. The floors (all servers: ${floorMd}):`,
    '',
    '| file size | floor (MB) | bracket (MB) | flaky (MB) | failed at the bracket | probes | search (min) |',
    '|---|---:|---|---|---|---|---:|',
    ...entries.map((e) => row(s, e)).map((r) => `| ${r.size} | ${r.floor} | ${r.bracket} | ${r.flaky} | ${r.phase} | ${r.probes} | ${r.minutes} |`),
    '',
  ].join('\n');
}
