// Throughput (MiB/s) against file size (MiB, log scale) as SVG, one line per
// memory limit (and uploads at once): for one run (its report.md) and for a
// comparison (baseline solid, candidate dashed); and memory over an upload's
// time per memory limit (samples.csv). vega-lite spec -> vega's headless SVG renderer.
//
//   fs.writeFileSync('throughput.svg', await throughputChartSvg(rows))
import type { TopLevelSpec } from 'vega-lite';
import type { CanaryRow, RawRow, SampleRow } from '../results.ts';
import type { HistoryPoint } from './history.ts';
import type { RunRecord } from '../run-record.ts';
import { caseSide, caseSizeLabel, groupCases, throughputOf } from '../cases.ts';
import { median } from '../stats/stats.ts';

interface Point {
  size_mib: number;
  file_size: string;
  memory_limit: string;
  memory_limit_mb: number;
  /** null for a case with no measured success: it is marked at 0 with its failure, not left off the line. */
  throughput_mib_s: number | null;
  run: string;
  /** For a case with no measured success: its most frequent failure, e.g. "oom_killed (upload)". */
  failure: string | null;
}

/** Median throughput of each case's measured, successful iterations; a case with none carries its failure instead. */
function points(rows: readonly RawRow[], config: RunRecord | null, run: string): Point[] {
  const out: Point[] = [];
  for (const caseRows of groupCases(rows).values()) {
    const side = caseSide(caseRows, config);
    const values = side.successes.map(throughputOf).filter((v): v is number => v !== null);
    const reasons = side.failures.map((f) => (f.failure_phase ? `${f.exit_reason} (${f.failure_phase})` : f.exit_reason));
    const common = reasons.length ? reasons.reduce((a, b) => (reasons.filter((x) => x === b).length > reasons.filter((x) => x === a).length ? b : a)) : 'no measured iteration';
    const r = caseRows[0];
    out.push({
      size_mib: r.file_size_bytes / 2 ** 20,
      file_size: r.file_size,
      // Uploads at once are a line of their own beside the limit's one-at-a-time line.
      memory_limit: r.concurrency > 1 ? `${r.memory_limit} ×${r.concurrency}` : r.memory_limit,
      memory_limit_mb: r.memory_limit_mb,
      throughput_mib_s: values.length ? median(values) : null,
      run,
      failure: values.length ? null : common,
    });
  }
  return out.sort((a, b) => a.memory_limit_mb - b.memory_limit_mb || a.size_mib - b.size_mib);
}

/** A vega expression that labels each tick with the matrix's size label, e.g. 1024 -> '1GiB'. */
function sizeLabels(values: Point[]): string {
  const byMib = new Map(values.map((v) => [v.size_mib, v.file_size]));
  return [...byMib].reduce((expr, [mib, label]) => `datum.value == ${mib} ? ${JSON.stringify(label)} : ${expr}`, 'datum.label');
}

function spec(values: Point[], title: string, byRun: boolean): TopLevelSpec {
  const limits = [...new Map(values.map((v) => [v.memory_limit, v.memory_limit_mb])).entries()]
    .sort((a, b) => a[1] - b[1])
    .map(([label]) => label);
  const sizes = [...new Set(values.map((v) => v.size_mib))].sort((a, b) => a - b);
  const measured = { filter: 'datum.throughput_mib_s !== null' };
  const failed = { filter: 'datum.failure !== null' };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: Math.max(520, sizes.length * 60),
    height: 300,
    background: 'white',
    data: { values: values as unknown as Record<string, unknown>[] },
    encoding: {
      x: {
        field: 'size_mib',
        type: 'quantitative',
        // Ticks at the sizes measured, on a log axis that does not round out to the next decade;
        // every one labelled (vega drops labels it finds crowded, so 10 sizes lost three), slanted to fit.
        scale: { type: 'log', nice: false, padding: 20 },
        axis: { values: sizes, labelExpr: sizeLabels(values), labelOverlap: false, labelAngle: sizes.length > 6 ? -40 : 0 },
        title: 'File size (log scale)',
      },
      color: { field: 'memory_limit', type: 'nominal', sort: limits, title: 'Memory limit', legend: { labelLimit: 0 } },
      detail: { field: 'run', type: 'nominal' },
    },
    // Lines carry the run as a dash pattern (its legend drawn as strokes, run names whole); points mark the
    // measured sizes; a case with no measured success is a cross at 0 with its failure written beside it.
    layer: [
      {
        transform: [measured],
        mark: { type: 'line' },
        encoding: {
          y: { field: 'throughput_mib_s', type: 'quantitative', scale: { zero: true }, title: 'Throughput (MiB/s, median)' },
          ...(byRun ? { strokeDash: { field: 'run', type: 'nominal', title: 'Run', legend: { symbolType: 'stroke', symbolStrokeColor: 'black', symbolStrokeWidth: 2, labelLimit: 0 } } } : {}),
        },
      },
      { transform: [measured], mark: { type: 'point', filled: true }, encoding: { y: { field: 'throughput_mib_s', type: 'quantitative' } } },
      { transform: [failed], mark: { type: 'point', shape: 'cross', size: 120, filled: true }, encoding: { y: { datum: 0, type: 'quantitative' } } },
      {
        transform: [failed],
        mark: { type: 'text', angle: -90, align: 'left', dx: 0, dy: -8, fontSize: 10 },
        encoding: { y: { datum: 0, type: 'quantitative' }, text: { field: 'failure' } },
      },
    ],
  };
}

async function render(s: TopLevelSpec): Promise<string> {
  // Loaded here, not at the top: vega and vega-lite take 0.7 s to import, which every
  // run-tests would pay at startup (and --help) for a chart drawn only at the end.
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(s).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** One run's chart. Warm-up as in config.json when given, else iteration 1 of cases with more than one. */
export async function throughputChartSvg(rows: RawRow[], config: RunRecord | null): Promise<string> {
  return render(spec(points(rows, config, 'run'), 'Upload throughput by file size', false));
}

/** Baseline and candidate on one chart; each line is one (run, memory limit). */
export async function comparisonChartSvg(
  base: { name: string; config: RunRecord | null; rows: RawRow[] },
  cand: { name: string; config: RunRecord | null; rows: RawRow[] },
): Promise<string> {
  const values = [...points(base.rows, base.config, `baseline ${base.name}`), ...points(cand.rows, cand.config, `candidate ${cand.name}`)];
  return render(spec(values, `Upload throughput: ${base.name} vs ${cand.name}`, true));
}

/**
 * The machine canary over the run (canary.csv): each part's time before each case, relative to its
 * median, so both parts share one axis. A flat chart means the host kept its speed; a step or a
 * slope is the machine, not the server.
 */
export async function canaryChartSvg(rows: CanaryRow[]): Promise<string> {
  const rel = (key: 'cpu_seconds' | 'disk_seconds') => {
    const m = median(rows.map((r) => r[key]));
    return rows.map((r, i) => ({ n: i + 1, before_case: r.before_case, part: key === 'cpu_seconds' ? 'CPU (sha256 of 64 MiB)' : 'disk (16 MiB written, synced)', pct: (r[key] / m - 1) * 100 }));
  };
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Machine canary: time before each case, against its median (no project code)',
    width: Math.max(520, rows.length * 12), height: 220, background: 'white',
    data: { values: [...rel('cpu_seconds'), ...rel('disk_seconds')] },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'n', type: 'quantitative', title: 'canary run (one before each case, in run order)', axis: { tickMinStep: 1 } },
      y: { field: 'pct', type: 'quantitative', title: 'time against the median (%)' },
      color: { field: 'part', type: 'nominal', title: null, legend: { orient: 'bottom', labelLimit: 0 } },
      tooltip: [{ field: 'before_case' }, { field: 'part' }, { field: 'pct', format: '.1f' }],
    },
  });
}

interface TimelinePointRow {
  t_seconds: number;
  memory_mib: number;
  series: string;
  size_mib: number;
}

/**
 * The iteration a case's timeline shows: the median-duration one of its measured successes
 * (of all its iterations when none succeeded, so a case that always fails still shows how).
 */
export function medianIteration(caseRows: RawRow[], config: RunRecord | null): number | null {
  const side = caseSide(caseRows, config);
  const pool = side.successes.length ? side.successes : side.rows;
  if (pool.length === 0) return null;
  const sorted = [...pool].sort((a, b) => a.duration_seconds - b.duration_seconds);
  return sorted[Math.floor((sorted.length - 1) / 2)].iteration;
}

/**
 * Memory over an upload's time at one memory limit (samples.csv): the environment's memory, one line per
 * case (file size, and uploads at once), its median iteration; the limit drawn as a red rule.
 */
export async function memoryTimelineSvg(samples: SampleRow[], rows: RawRow[], config: RunRecord | null, memoryMb: number): Promise<string | null> {
  const values: TimelinePointRow[] = [];
  for (const caseRows of groupCases(rows.filter((r) => r.memory_limit_mb === memoryMb)).values()) {
    const it = medianIteration(caseRows, config);
    const r = caseRows[0];
    const series = caseSizeLabel(r);
    for (const s of samples) {
      if (s.memory_limit_mb !== memoryMb || s.file_size_bytes !== r.file_size_bytes || s.concurrency !== r.concurrency || s.iteration !== it) continue;
      if (s.env_memory_bytes === null) continue;
      values.push({ t_seconds: s.t_seconds, memory_mib: s.env_memory_bytes / 2 ** 20, series, size_mib: (r.file_size_bytes * r.concurrency) / 2 ** 20 });
    }
  }
  if (values.length === 0) return null;
  const order = [...new Map(values.map((v) => [v.series, v.size_mib])).entries()].sort((a, b) => a[1] - b[1]).map(([s]) => s);
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Memory during an upload at ${memoryMb} MB (median iteration of each case)`,
    width: 520,
    height: 300,
    background: 'white',
    layer: [
      {
        data: { values: values as unknown as Record<string, unknown>[] },
        mark: { type: 'line', point: { size: 12 } },
        encoding: {
          x: { field: 't_seconds', type: 'quantitative', title: 'Seconds since the request started' },
          y: { field: 'memory_mib', type: 'quantitative', title: 'Environment memory (MiB)', scale: { zero: true } },
          color: { field: 'series', type: 'nominal', sort: order, title: 'File size' },
        },
      },
      {
        data: { values: [{ limit: memoryMb, label: `limit ${memoryMb} MB` }] },
        layer: [
          { mark: { type: 'rule', color: 'red', strokeDash: [6, 4] }, encoding: { y: { field: 'limit', type: 'quantitative' } } },
          {
            mark: { type: 'text', color: 'red', align: 'left', dx: 4, dy: -6 },
            encoding: { y: { field: 'limit', type: 'quantitative' }, x: { value: 0 }, text: { field: 'label' } },
          },
        ],
      },
    ],
  };
  return render(spec);
}

/** The history view's chart: throughput, processing time and server peak RSS across the refs in the order given, a line per case. */
export async function historyChartSvg(points: HistoryPoint[]): Promise<string> {
  const refs = [...new Map(points.map((p) => [p.ref, p.order])).entries()].sort((a, b) => a[1] - b[1]).map(([r]) => r);
  const panel = (field: keyof HistoryPoint, title: string) => ({
    width: Math.max(240, refs.length * 60), height: 220,
    mark: { type: 'line' as const, point: true },
    encoding: {
      x: { field: 'ref', type: 'ordinal' as const, sort: refs, title: 'ref (in the order given)', axis: { labelAngle: -30, labelLimit: 0 } },
      y: { field, type: 'quantitative' as const, title, scale: { zero: true } },
      color: { field: 'case', type: 'nominal' as const, title: 'case', legend: { labelLimit: 0 } },
    },
  });
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Across the refs',
    background: 'white',
    data: { values: points as unknown as Record<string, unknown>[] },
    hconcat: [
      {
        // A ref with no measured success has no throughput: its failures are written where its point would be.
        layer: [panel('throughputMiBs', 'throughput (MiB/s, median)'), {
          mark: { type: 'text' as const, color: '#b00', dy: -8, angle: -30, align: 'left' as const },
          transform: [{ filter: 'datum.throughputMiBs === null' }],
          encoding: { x: { field: 'ref', type: 'ordinal' as const, sort: refs }, y: { datum: 0 }, text: { field: 'failures' } },
        }, {
          // Where throughput changed against the ref before, as a bisection step would judge it.
          mark: { type: 'point' as const, shape: 'circle', size: 300, color: '#b00', strokeWidth: 2 },
          transform: [{ filter: 'datum.changed && datum.throughputMiBs !== null' }],
          encoding: { x: { field: 'ref', type: 'ordinal' as const, sort: refs }, y: { field: 'throughputMiBs', type: 'quantitative' as const } },
        }],
      },
      panel('processingSeconds', 'processing (s, median)'),
      panel('serverPeakRssMiB', 'server peak RSS (MiB)'),
    ],
  });
}

/** One search's point on the floor chart; `floor_mb` null for no floor in the range (drawn at the top); `label` written beside it. */
export interface FloorPoint { server: string; order: number; size_mib: number; file_size: string; floor_mb: number | null; label: string }

/** The memory floor against file size (both log axes), a line per server, the matrix's memory limits as dashed reference lines. */
export async function floorChartSvg(points: FloorPoint[], limitsMb: number[], topMb: number): Promise<string> {
  const servers = [...new Map(points.map((p) => [p.server, p.order])).entries()].sort((a, b) => a[1] - b[1]).map(([s]) => s);
  const values = points.map((p) => ({ ...p, y: p.floor_mb ?? topMb }));
  const sizes = [...new Set(points.map((p) => p.size_mib))].sort((a, b) => a - b);
  const labels = [...new Map(points.map((p) => [p.size_mib, p.file_size]))].reduce((expr, [mib, label]) => `datum.value == ${mib} ? ${JSON.stringify(label)} : ${expr}`, 'datum.label');
  const x = { field: 'size_mib', type: 'quantitative' as const, title: 'file size (log scale)', scale: { type: 'log' as const, padding: 40 }, axis: { values: sizes, labelExpr: labels } };
  const y = { field: 'y', type: 'quantitative' as const, title: 'memory floor (MB, log scale)', scale: { type: 'log' as const } };
  const color = { field: 'server', type: 'nominal' as const, sort: servers, title: 'server', legend: { labelLimit: 0 } };
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Memory floor by file size',
    background: 'white',
    width: 460, height: 300,
    layer: [
      {
        data: { values: limitsMb.map((mb) => ({ mb, text: `${mb} MB` })) },
        layer: [
          { mark: { type: 'rule', strokeDash: [4, 4], color: '#999' }, encoding: { y: { field: 'mb', type: 'quantitative' } } },
          { mark: { type: 'text', align: 'right', dx: -4, dy: -6, color: '#777' }, encoding: { y: { field: 'mb', type: 'quantitative' }, x: { value: 460 }, text: { field: 'text' } } },
        ],
      },
      { data: { values }, mark: { type: 'line', point: true }, encoding: { x, y, color } },
      {
        // Each floor's value; a search with no floor in the range sits at its top, said so; one at the bottom says "or less".
        data: { values },
        mark: { type: 'text', dy: -10, fontSize: 10 }, encoding: { x, y, color, text: { field: 'label' } },
      },
    ],
    resolve: { scale: { y: 'shared' } },
  } as TopLevelSpec);
}

/** One commit of a bisection's path: its value on the metric's scale with the interval against GOOD. */
export interface BisectPoint { commit: string; order: number; value: number | null; lo: number | null; hi: number | null; culprit: boolean; class: string }

/** The bisection's chart: each measured commit in history order, its value and interval, the culprit marked in red. */
export async function bisectChartSvg(points: BisectPoint[], yTitle: string, culpritLabel: string | null): Promise<string> {
  const order = [...points].sort((a, b) => a.order - b.order).map((p) => p.commit);
  const x = { field: 'commit', type: 'ordinal' as const, sort: order, title: 'commit (history order, GOOD first)', axis: { labelAngle: -40, labelLimit: 0 } };
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: culpritLabel ? `Bisection: ${culpritLabel}` : 'Bisection',
    background: 'white',
    width: Math.max(320, order.length * 48), height: 260,
    data: { values: points as unknown as Record<string, unknown>[] },
    layer: [
      { mark: { type: 'rule' as const, color: '#888' }, transform: [{ filter: 'datum.lo !== null && datum.hi !== null' }], encoding: { x, y: { field: 'lo', type: 'quantitative' as const }, y2: { field: 'hi' } } },
      {
        mark: { type: 'point' as const, filled: true, size: 80 },
        transform: [{ filter: 'datum.value !== null' }],
        encoding: {
          x, y: { field: 'value', type: 'quantitative' as const, title: yTitle, scale: { zero: false } },
          color: { field: 'class', type: 'nominal' as const, title: 'judged', scale: { domain: ['good (GOOD)', 'good', 'bad', 'bad (BAD)', 'between', 'undecided'], range: ['#1a7f37', '#4caf50', '#e08a00', '#b35900', '#7b3fb0', '#888'] } },
        },
      },
      {
        mark: { type: 'text' as const, color: '#b00', dy: -14, fontWeight: 'bold' as const, text: 'culprit' },
        transform: [{ filter: 'datum.culprit && datum.value !== null' }],
        encoding: { x, y: { field: 'value', type: 'quantitative' as const } },
      },
      {
        mark: { type: 'point' as const, shape: 'circle', size: 400, color: '#b00', strokeWidth: 2 },
        transform: [{ filter: 'datum.culprit && datum.value !== null' }],
        encoding: { x, y: { field: 'value', type: 'quantitative' as const } },
      },
    ],
  });
}
