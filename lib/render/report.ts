// report.md: per case (memory limit x size) the median duration and throughput
// over successful, non-warm-up iterations, peaks, failures, and the run's
// settings. Pure: rows, record and template in, Markdown out (lib/report-files.ts
// writes it with its charts into a run folder).
import { duration } from '../stats/plan.ts';
import Mustache from 'mustache';
import { summarizeCases } from '../cases.ts';
import type { RawRow } from '../row.ts';
import type { RunRecord } from '../run-record.ts';
import { formatBytes, toMiB } from '../units.ts';

export interface ReportInput {
  runName: string;
  rows: RawRow[];
  config: RunRecord;
  /** File name of the throughput chart beside report.md, when one was drawn. */
  chartFile: string | null;
  /** File name of the machine canary's chart beside report.md, when the run timed it more than once. */
  canaryChartFile?: string | null;
  /** The memory timelines beside report.md (samples.csv), one per memory limit, largest first. */
  memoryCharts?: { memoryMb: number; file: string }[];
}

const cell = (s: string, max: number) => {
  const t = s.replace(/\s+/g, ' ').replace(/\|/g, '/');
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};
const fmt = (x: number | null, digits: number) => (x === null ? '–' : x.toFixed(digits));
const mib = (x: number | null) => (x === null ? '–' : toMiB(x).toFixed(1));

export function renderReport(input: ReportInput, template: string): string {
  const { config } = input;
  const cases = summarizeCases(input.rows, config).map((c) => ({
    ...c,
    duration: fmt(c.medianDurationSeconds, 2),
    throughput: fmt(c.medianThroughputMiBs, 1),
    cv: c.throughputCvPct === null ? '–' : `${c.throughputCvPct.toFixed(1)}%`,
    processing: fmt(c.medianProcessingSeconds, 2),
    peak: mib(c.peakMemoryBytes),
    // The download's peak beside the upload's: PicoShare 1.1.8 needs far more memory to serve a file than to take it.
    rss: c.iterationPeakRssBytes === null ? mib(c.serverPeakRssBytes) : `${mib(c.serverPeakRssBytes)} / ${mib(c.iterationPeakRssBytes)}`,
    pressure: c.medianCpuPressurePct === null ? '–' : `${c.medianCpuPressurePct.toFixed(0)}%`,
    failureText: Object.entries(c.failures).map(([k, n]) => `${n}× ${k}`).join(', ') || '–',
    // A table cell: one line, no pipes, short enough to read (the whole entry is in failures.log).
    firstError: c.firstError === null ? '–' : cell(c.firstError, 100),
    cpu: fmt(c.medianCpuSecondsPerGiB, 2),
    cpuCv: c.cpuCvPct === null ? '–' : `${c.cpuCvPct.toFixed(1)}%`,
    writeAmp: fmt(c.medianWriteAmplification, 2),
    writeCv: c.writeCvPct === null ? '–' : `${c.writeCvPct.toFixed(1)}%`,
    spaceAmp: fmt(c.medianSpaceAmplification, 2),
    download: fmt(c.medianDownloadMiBs, 1),
    ttfb: c.medianDownloadTtfbSeconds === null ? '–' : `${(c.medianDownloadTtfbSeconds * 1000).toFixed(0)}`,
  }));
  const knobs = Object.entries(config.server.standin_env ?? {}).filter(([, v]) => v !== '');
  const spent = cases.some((c) => c.medianCpuSecondsPerGiB !== null || c.medianWriteAmplification !== null || c.medianDownloadMiBs !== null);
  const facts = Object.entries(config.provider_facts)
    .sort(([a], [b]) => Number(b) - Number(a))
    .map(([mem, f]) => ({ mem, text: Object.entries(f).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ') }));
  const unenforced = Object.values(config.provider_facts).some((f) => f.limitEnforced === false);
  const tcg = Object.values(config.provider_facts).some((f) => f.accel === 'tcg');
  const git = config.server.git;
  const view = {
    runName: input.runName,
    finished: config.finished,
    stopReason: config.stop_reason,
    // One side of a two-ref run is resumed with the others, from their parent folder (lib/resume.ts).
    finishHint: config.ab ? '`./run-tests --resume` on the parent folder finishes every side together' : '`./run-tests --resume` finishes it',
    cases,
    failedTotal: input.rows.filter((r) => r.exit_reason !== 'success').length,
    rowsTotal: input.rows.length,
    provider: config.provider,
    server: `${config.server.kind}${config.server.path ? ` (${config.server.path})` : ''}`,
    git: git ? `${git.commit.slice(0, 12)} on ${git.branch}${git.dirty ? ', dirty' : ''}` : null,
    iterations: config.matrix.iterations,
    warmup: config.matrix.warmup_iterations,
    uploadTimeout: config.matrix.upload_timeout_seconds,
    startedAt: config.started_at,
    endedAt: config.ended_at ?? '(not ended)',
    // The plan printed before the run (lib/stats/plan.ts) against the time it took.
    plan: config.plan ? {
      expected: duration(config.plan.seconds.expected), least: duration(config.plan.seconds.least), most: duration(config.plan.seconds.most),
      rounds: `${config.plan.rounds.least}/${config.plan.rounds.expected}/${config.plan.rounds.most}`,
      actual: config.ended_at ? duration((Date.parse(config.ended_at) - Date.parse(config.started_at)) / 1000) : '(not ended)',
      noiseCuts: config.matrix.noise_cuts?.length ? config.matrix.noise_cuts.join(', ') : 'none',
    } : null,
    // Fault knobs shape every figure (a throttled 19.5 MiB/s looks real without them).
    knobs: knobs.length ? knobs.map(([k, v]) => `${k}=${v}`).join(', ') : null,
    resumes: config.resumes?.length ? `${config.resumes.length} (at ${config.resumes.map((r) => r.started_at).join(', ')}): the span includes the time between` : null,
    host: `${config.host.hostname}: ${config.host.cpu_model}, ${config.host.cores} cores, ${formatBytes(config.host.memory_bytes)}, Linux ${config.host.kernel}`,
    facts,
    unenforced,
    tcg,
    chartFile: input.chartFile,
    canaryChartFile: input.canaryChartFile ?? null,
    spent,
    spentCases: spent ? cases : [],
    concurrent: cases.some((c) => c.concurrency > 1),
    memoryCharts: input.memoryCharts ?? [],
  };
  return Mustache.render(template, view, undefined, { escape: (s: string) => s });
}
