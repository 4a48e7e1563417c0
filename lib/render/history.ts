// The history view of a run of several refs (or binaries), in the order given:
// per case, each ref's median throughput, median processing time and server
// peak RSS, as a table (history.md in the run's parent folder) and one chart
// (history.svg). `./run-tests --ref 1.1.8 --ref 1.2.0 --ref 1.3.0 ...` shows a
// server's upload story across its releases on one page.
//   const h = historyOf(run.sides.map((s) => ({ name: s.side.name, rows: s.rows, record: s.record })))
//   fs.writeFileSync('history.md', renderHistory(h, template, 'history.svg'))
// Pure: rows in, view and text out.
import Mustache from 'mustache';
import { formatChange, judgePair, metricByName, moveWords } from '../stats/bisect.ts';
import { caseKey, caseLabel, caseSide, groupCases, summarizeCases, throughputOf } from '../cases.ts';
import type { RawRow } from '../results.ts';
import type { RunRecord } from '../run-record.ts';
import { lastLookReached, stoppingRule } from '../stats/sequential.ts';
import { toMiB } from '../units.ts';

export interface HistoryPoint {
  ref: string;
  /** The ref's place in the order given (0: the baseline). */
  order: number;
  case: string;
  throughputMiBs: number | null;
  processingSeconds: number | null;
  serverPeakRssMiB: number | null;
  failures: string;
  /** Throughput against the ref before it, paired by round, with its 95% interval; null for the first or without shared rounds. */
  vsPrevious: string | null;
  /** The ref before it and this one differ in throughput, judged as a bisection step judges (lib/stats/bisect.ts judgePair). */
  changed: boolean;
}

export interface HistoryCase { case: string; points: HistoryPoint[] }

/** Every case of any side, its sides' summaries in the order given (a side that lacks the case shows as missing). */
export function historyOf(sides: { name: string; rows: RawRow[]; record: RunRecord | null }[]): HistoryCase[] {
  const summaries = sides.map((s) => summarizeCases(s.rows, s.record));
  const cases: { key: string; label: string }[] = [];
  for (const list of summaries) {
    for (const c of list) {
      const key = caseKey({ bytes: c.sizeBytes, ...c });
      if (!cases.some((x) => x.key === key)) cases.push({ key, label: caseLabel(c.fileSize.replace(/ ×\d+$/, ''), c) });
    }
  }
  return cases.map(({ key, label }) => ({
    case: label,
    points: sides.map((s, i) => {
      const c = summaries[i].find((x) => caseKey({ bytes: x.sizeBytes, ...x }) === key);
      const step = i > 0 && c ? againstPrevious(sides[i - 1], s, caseKey({ bytes: c.sizeBytes, memoryMb: c.memoryMb, concurrency: c.concurrency })) : null;
      return {
        vsPrevious: step?.text ?? null, changed: step?.changed ?? false,
        ref: s.name, order: i, case: label,
        throughputMiBs: c?.medianThroughputMiBs ?? null,
        processingSeconds: c?.medianProcessingSeconds ?? null,
        serverPeakRssMiB: c?.serverPeakRssBytes == null ? null : toMiB(c.serverPeakRssBytes),
        failures: c ? Object.entries(c.failures).map(([k, n]) => `${n}× ${k}`).join(', ') : 'not run',
      };
    }),
  }));
}

/**
 * Throughput of `cur` against `prev` on one case, over the rounds both measured
 * successfully: at the last look of the run's recorded rule those rounds
 * reached (a run of fixed iterations: one look at all of them, alpha 0.05).
 */
function againstPrevious(prev: { rows: RawRow[]; record: RunRecord | null }, cur: { rows: RawRow[]; record: RunRecord | null }, key: string) {
  const values = (side: typeof prev) => new Map(caseSide(groupCases(side.rows).get(key) ?? [], side.record).successes.map((r) => [r.iteration, throughputOf(r)]));
  const a = values(prev), b = values(cur);
  const rounds = [...a.keys()].filter((i) => (a.get(i) ?? 0) > 0 && (b.get(i) ?? 0) > 0).sort((x, y) => x - y);
  const rule = cur.record?.ab?.stopping_rule ?? (rounds.length ? stoppingRule({ alpha: 0.05, noisePct: 3, cases: 1, maxRounds: rounds.length, looks: [] }) : null);
  const look = rule && lastLookReached(rounds.length, rule);
  if (!rule || !look) return null;
  const metric = metricByName('throughput')!;
  const j = judgePair(metric, rounds.map((i) => a.get(i)!), rounds.map((i) => b.get(i)!), look, rule);
  const changed = j.move === 'up' || j.move === 'down';
  return { text: `${formatChange(metric, j)}${changed ? ` ${moveWords(metric, j.move)}` : ''}`, changed };
}

const fmt = (x: number | null, digits: number) => (x === null ? '–' : x.toFixed(digits));

/** history.md: a table per case, one row per ref in the order given; the chart beside it when drawn. */
export function renderHistory(history: HistoryCase[], template: string, chartFile: string | null): string {
  const view = {
    refs: history[0]?.points.map((p) => p.ref).join(', ') ?? '',
    chartFile,
    cases: history.map((h) => ({
      case: h.case,
      rows: h.points.map((p) => ({
        ref: p.ref, throughput: fmt(p.throughputMiBs, 1), processing: fmt(p.processingSeconds, 2), rss: fmt(p.serverPeakRssMiB, 1),
        failures: p.failures || '–', vs: p.vsPrevious ? `${p.vsPrevious}${p.changed ? ' **changed**' : ''}` : '–',
      })),
    })),
  };
  return Mustache.render(template, view, undefined, { escape: (s: string) => s });
}
