// The benchmark's pure parts: a figure with its target and verdict, the
// harness-overhead split of a run's requests, and the printed table. No I/O,
// tested on literal data (test/bench.test.mts).
//   renderTable([{ key: 'x', name: 'client vs curl', value: 0.93, unit: 'x', target: { op: '>=', value: 0.9 } }])

export interface Target { op: '>=' | '<='; value: number }

export interface Figure {
  key: string;
  name: string;
  /** null: not measured (see note). */
  value: number | null;
  unit: string;
  target: Target | null;
  /** How it was measured and what bounds it: sizes, samples, the parts of a ratio. */
  detail?: string;
  /** Why a figure was not measured. */
  note?: string;
  /** The measurements a spread figure (a CV) is computed from, unrounded, in the JSON for plotting and checking. */
  samples?: number[];
}

export type Verdict = 'pass' | 'FAIL' | 'n/a';

export function verdict(f: Figure): Verdict {
  if (f.value === null || f.target === null) return 'n/a';
  const ok = f.target.op === '>=' ? f.value >= f.target.value : f.value <= f.target.value;
  return ok ? 'pass' : 'FAIL';
}

/** One request as request-timing.mts records it (ms since the run's process started). */
export interface Timing { method: string; path: string; startMs: number; endMs: number; ok: boolean }

export type RequestKind = 'upload' | 'verify' | 'readiness' | 'auth' | 'delete' | 'other';

export function requestKind(t: Pick<Timing, 'method' | 'path'>): RequestKind {
  if (t.method === 'POST' && t.path.startsWith('/api/entry')) return 'upload';
  if (t.method === 'GET' && t.path.startsWith('/-')) return 'verify';
  if (t.method === 'GET' && t.path === '/') return 'readiness';
  if (t.method === 'POST' && t.path === '/api/auth') return 'auth';
  if (t.method === 'DELETE') return 'delete';
  return 'other';
}

/** Where a run's wall time went: time in requests by kind, and the gaps between them by what happens there. */
export type Phase = RequestKind | 'startup' | 'restart' | 'sampling' | 'after upload' | 'after verify' | 'between' | 'teardown';

export interface OverheadSplit {
  wallSeconds: number;
  seconds: Partial<Record<Phase, number>>;
  uploads: number;
  /** (wall - uploads - verification downloads) / wall, in percent. */
  overheadPct: number;
}

/** What happens in the gap between a request of kind `prev` and the next one of kind `next` (iteration.ts's order). */
function gapPhase(prev: RequestKind | null, next: RequestKind): Phase {
  if (prev === null) return 'startup'; // process start, imports, test file check, results folder
  if (next === 'readiness') return prev === 'readiness' ? 'readiness' : 'restart'; // poll interval; stop, fresh data folder, spawn
  if (prev === 'auth' && next === 'upload') return 'sampling';
  if (prev === 'upload') return 'after upload'; // stop sampling, recording
  if (prev === 'verify') return 'after verify';
  return 'between';
}

/**
 * Splits a run's wall time (seconds, measured around the process) using its
 * requests' timings (ms since the process started; requests never overlap in
 * a run): the time in each kind of request and in each gap between them.
 */
export function overheadSplit(wallSeconds: number, timings: readonly Timing[]): OverheadSplit {
  const seconds: Partial<Record<Phase, number>> = {};
  const add = (p: Phase, ms: number) => { seconds[p] = (seconds[p] ?? 0) + ms / 1000; };
  let prevEnd = 0;
  let prev: RequestKind | null = null;
  for (const t of [...timings].sort((a, b) => a.startMs - b.startMs)) {
    const kind = requestKind(t);
    add(gapPhase(prev, kind), t.startMs - prevEnd);
    add(kind, t.endMs - t.startMs);
    prevEnd = t.endMs;
    prev = kind;
  }
  add('teardown', wallSeconds * 1000 - prevEnd); // last request to exit: reports, cleanup, process exit
  const uploads = timings.filter((t) => requestKind(t) === 'upload').length;
  const outside = wallSeconds - (seconds.upload ?? 0) - (seconds.verify ?? 0);
  return { wallSeconds, seconds, uploads, overheadPct: (outside / wallSeconds) * 100 };
}

const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));

export function formatValue(f: Figure): string {
  return f.value === null ? 'not measured' : `${fmt(f.value)} ${f.unit}`.trim();
}

export function formatTarget(t: Target | null, unit: string): string {
  return t === null ? 'report' : `${t.op} ${fmt(t.value)} ${unit}`.trim();
}

/** A markdown table: figure, value, target, verdict; details and notes as lines under it. */
export function renderTable(figures: readonly Figure[]): string {
  const rows = figures.map((f) => [f.name, formatValue(f), formatTarget(f.target, f.unit), verdict(f)]);
  const head = ['figure', 'value', 'target', 'result'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  const notes = figures.flatMap((f) => [
    ...(f.detail ? [`- ${f.name}: ${f.detail}`] : []),
    ...(f.note ? [`- ${f.name}: ${f.note}`] : []),
  ]);
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line), '', ...notes, ''].join('\n');
}
