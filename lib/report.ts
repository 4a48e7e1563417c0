// report.md: per case (memory limit x size) the median duration and throughput
// over successful, non-warm-up iterations, peaks, failures, and the run's
// settings. renderReport is pure (rows, record and template in, Markdown out);
// writeReportFiles reads the template and writes it with its chart into a run folder.
import fs from 'node:fs';
import path from 'node:path';
import Mustache from 'mustache';
import { caseSide, groupCases, throughputOf } from './cases.ts';
import { canaryChartSvg, throughputChartSvg } from './charts.ts';
import { SUITE_DIR } from './paths.ts';
import { parseCanaryCsv, writeFileAtomic, type RawRow } from './results.ts';
import type { RunRecord } from './run-record.ts';
import { cvPct, max, median } from './stats.ts';
import { formatBytes, toMiB } from './units.ts';

export interface CaseSummary {
  memoryMb: number;
  sizeBytes: number;
  fileSize: string;
  memoryLimit: string;
  runs: number;
  measured: number;
  medianDurationSeconds: number | null;
  medianThroughputMiBs: number | null;
  throughputCvPct: number | null;
  medianProcessingSeconds: number | null;
  peakMemoryBytes: number | null;
  serverPeakRssBytes: number | null;
  /** Median share of upload time a host task waited for a CPU. */
  medianCpuPressurePct: number | null;
  failures: Record<string, number>;
  /** The first failed iteration's error line, for the case's row. */
  firstError: string | null;
}

/** Each case's measured iterations (lib/cases.ts) summarised, memory largest first, then size largest first. */
export function summarizeCases(rows: RawRow[], config: RunRecord | null): CaseSummary[] {
  const nums = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null && Number.isFinite(x));
  const medianOf = (xs: (number | null)[]) => (nums(xs).length ? median(nums(xs)) : null);
  return [...groupCases(rows).values()]
    .map((g) => {
      const { successes: measured, failures: failed } = caseSide(g, config);
      const failures: Record<string, number> = {};
      for (const r of failed) {
        const k = r.failure_phase ? `${r.exit_reason} (${r.failure_phase})` : r.exit_reason;
        failures[k] = (failures[k] ?? 0) + 1;
      }
      const thr = nums(measured.map(throughputOf));
      const peaks = nums(g.map((r) => r.peak_memory_bytes));
      const rss = nums(g.map((r) => r.server_peak_rss_bytes));
      return {
        memoryMb: g[0].memory_limit_mb, sizeBytes: g[0].file_size_bytes,
        fileSize: g[0].file_size, memoryLimit: g[0].memory_limit,
        runs: g.length, measured: measured.length,
        medianDurationSeconds: medianOf(measured.map((r) => r.duration_seconds)),
        medianThroughputMiBs: thr.length ? median(thr) : null,
        throughputCvPct: thr.length > 1 ? cvPct(thr) : null,
        medianProcessingSeconds: medianOf(measured.map((r) => r.processing_seconds)),
        peakMemoryBytes: peaks.length ? max(peaks) : null,
        serverPeakRssBytes: rss.length ? max(rss) : null,
        medianCpuPressurePct: medianOf(measured.map((r) => r.host_cpu_pressure_pct)),
        failures,
        firstError: failed.length ? `#${failed[0].iteration}: ${failed[0].error}` : null,
      };
    })
    .sort((a, b) => b.memoryMb - a.memoryMb || b.sizeBytes - a.sizeBytes);
}

export interface ReportInput {
  runName: string;
  rows: RawRow[];
  config: RunRecord;
  /** File name of the throughput chart beside report.md, when one was drawn. */
  chartFile: string | null;
  /** File name of the machine canary's chart beside report.md, when the run timed it more than once. */
  canaryChartFile?: string | null;
}

export const REPORT_TEMPLATE = path.join(SUITE_DIR, 'templates', 'report.md.mustache');

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
    rss: mib(c.serverPeakRssBytes),
    pressure: c.medianCpuPressurePct === null ? '–' : `${c.medianCpuPressurePct.toFixed(0)}%`,
    failureText: Object.entries(c.failures).map(([k, n]) => `${n}× ${k}`).join(', ') || '–',
    // A table cell: one line, no pipes, short enough to read (the whole entry is in failures.log).
    firstError: c.firstError === null ? '–' : cell(c.firstError, 100),
  }));
  const knobs = Object.entries(config.server.standin_env ?? {}).filter(([, v]) => v !== '');
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
    // One side of a two-ref run is not resumed alone (lib/resume.ts): the comparison is run again.
    finishHint: config.ab ? 'rerunning the two-ref comparison measures it anew (one side cannot be resumed alone)' : '`./run-tests --resume` finishes it',
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
    // Fault knobs shape every figure (a throttled 19.5 MiB/s looks real without them).
    knobs: knobs.length ? knobs.map(([k, v]) => `${k}=${v}`).join(', ') : null,
    resumes: config.resumes?.length ? `${config.resumes.length} (at ${config.resumes.map((r) => r.started_at).join(', ')}): the span includes the time between` : null,
    host: `${config.host.hostname}: ${config.host.cpu_model}, ${config.host.cores} cores, ${formatBytes(config.host.memory_bytes)}, Linux ${config.host.kernel}`,
    facts,
    unenforced,
    tcg,
    chartFile: input.chartFile,
    canaryChartFile: input.canaryChartFile ?? null,
  };
  return Mustache.render(template, view, undefined, { escape: (s: string) => s });
}

/** Writes report.md (and throughput.svg when any iteration succeeded) into a run folder; makes sure failures.log exists. */
export async function writeReportFiles(dir: string, rows: RawRow[], config: RunRecord): Promise<void> {
  let chartFile: string | null = null;
  if (rows.some((r) => r.exit_reason === 'success')) {
    writeFileAtomic(path.join(dir, 'throughput.svg'), await throughputChartSvg(rows, config));
    chartFile = 'throughput.svg';
  }
  const template = fs.readFileSync(REPORT_TEMPLATE, 'utf8');
  const canaryFile = path.join(dir, 'canary.csv');
  const canary = fs.existsSync(canaryFile) ? parseCanaryCsv(fs.readFileSync(canaryFile, 'utf8'), canaryFile) : [];
  if (canary.length > 1) writeFileAtomic(path.join(dir, 'canary.svg'), await canaryChartSvg(canary));
  writeFileAtomic(path.join(dir, 'report.md'), renderReport({ runName: path.basename(dir), rows, config, chartFile, canaryChartFile: canary.length > 1 ? 'canary.svg' : null }, template));
  if (!fs.existsSync(path.join(dir, 'failures.log'))) fs.writeFileSync(path.join(dir, 'failures.log'), '');
}
