// report.md: per case (memory limit x size) the median duration and throughput
// over successful, non-warm-up iterations, peaks, failures, and the run's
// settings. renderReport is pure (rows, record and template in, Markdown out);
// writeReportFiles reads the template and writes it with its chart into a run folder.
import { duration } from './plan.ts';
import fs from 'node:fs';
import path from 'node:path';
import Mustache from 'mustache';
import { caseSide, caseSizeLabel, cpuSecondsPerGiB, groupCases, spaceAmplification, throughputOf, writeAmplification } from './cases.ts';
import { canaryChartSvg, memoryTimelineSvg, throughputChartSvg } from './charts.ts';
import { SUITE_DIR } from './paths.ts';
import { parseCanaryCsv, parseSamplesCsv, writeFileAtomic, type RawRow } from './results.ts';
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
  /** Uploads started together; throughput and duration above are the iteration's aggregate and slowest. */
  concurrency: number;
  medianCpuSecondsPerGiB: number | null;
  cpuCvPct: number | null;
  medianWriteAmplification: number | null;
  writeCvPct: number | null;
  medianSpaceAmplification: number | null;
  medianDownloadMiBs: number | null;
  medianDownloadTtfbSeconds: number | null;
}

/** Each case's measured iterations (lib/cases.ts) summarised, memory largest first, then size largest first. */
export function summarizeCases(rows: RawRow[], config: RunRecord | null): CaseSummary[] {
  const nums = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null && Number.isFinite(x));
  const medianOf = (xs: (number | null)[]) => (nums(xs).length ? median(nums(xs)) : null);
  return [...groupCases(rows).values()]
    .map((g) => {
      const { rows: iterations, successes: measured, failures: failed } = caseSide(g, config);
      const cpu = nums(measured.map(cpuSecondsPerGiB));
      const writes = nums(measured.map(writeAmplification));
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
        fileSize: caseSizeLabel(g[0]), memoryLimit: g[0].memory_limit,
        runs: iterations.length, measured: measured.length,
        medianDurationSeconds: medianOf(measured.map((r) => r.duration_seconds)),
        medianThroughputMiBs: thr.length ? median(thr) : null,
        throughputCvPct: thr.length > 1 ? cvPct(thr) : null,
        medianProcessingSeconds: medianOf(measured.map((r) => r.processing_seconds)),
        peakMemoryBytes: peaks.length ? max(peaks) : null,
        serverPeakRssBytes: rss.length ? max(rss) : null,
        medianCpuPressurePct: medianOf(measured.map((r) => r.host_cpu_pressure_pct)),
        failures,
        firstError: failed.length ? `#${failed[0].iteration}: ${failed[0].error}` : null,
        concurrency: g[0].concurrency,
        medianCpuSecondsPerGiB: cpu.length ? median(cpu) : null,
        cpuCvPct: cpu.length > 1 ? cvPct(cpu) : null,
        medianWriteAmplification: writes.length ? median(writes) : null,
        writeCvPct: writes.length > 1 ? cvPct(writes) : null,
        medianSpaceAmplification: medianOf(measured.map(spaceAmplification)),
        medianDownloadMiBs: medianOf(measured.map((r) => r.download_mib_s)),
        medianDownloadTtfbSeconds: medianOf(measured.map((r) => r.download_ttfb_seconds)),
      };
    })
    .sort((a, b) => b.memoryMb - a.memoryMb || b.sizeBytes - a.sizeBytes || a.concurrency - b.concurrency);
}

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
    // The plan printed before the run (lib/plan.ts) against the time it took.
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

/**
 * Writes report.md (with throughput.svg when any iteration succeeded, and memory-<limit>MB.svg per memory
 * limit when samples.csv holds its timeline) into a run folder; makes sure failures.log exists.
 */
export async function writeReportFiles(dir: string, rows: RawRow[], config: RunRecord): Promise<void> {
  let chartFile: string | null = null;
  if (rows.some((r) => r.exit_reason === 'success')) {
    writeFileAtomic(path.join(dir, 'throughput.svg'), await throughputChartSvg(rows, config));
    chartFile = 'throughput.svg';
  }
  const memoryCharts: { memoryMb: number; file: string }[] = [];
  const samplesFile = path.join(dir, 'samples.csv');
  if (fs.existsSync(samplesFile)) {
    const samples = parseSamplesCsv(fs.readFileSync(samplesFile, 'utf8'), samplesFile);
    for (const memoryMb of [...new Set(rows.map((r) => r.memory_limit_mb))].sort((a, b) => b - a)) {
      const svg = await memoryTimelineSvg(samples, rows, config, memoryMb);
      if (svg === null) continue;
      const file = `memory-${memoryMb}MB.svg`;
      writeFileAtomic(path.join(dir, file), svg);
      memoryCharts.push({ memoryMb, file });
    }
  }
  const template = fs.readFileSync(REPORT_TEMPLATE, 'utf8');
  const canaryFile = path.join(dir, 'canary.csv');
  const canary = fs.existsSync(canaryFile) ? parseCanaryCsv(fs.readFileSync(canaryFile, 'utf8'), canaryFile) : [];
  if (canary.length > 1) writeFileAtomic(path.join(dir, 'canary.svg'), await canaryChartSvg(canary));
  writeFileAtomic(path.join(dir, 'report.md'), renderReport({ runName: path.basename(dir), rows, config, chartFile, memoryCharts, canaryChartFile: canary.length > 1 ? 'canary.svg' : null }, template));
  if (!fs.existsSync(path.join(dir, 'failures.log'))) fs.writeFileSync(path.join(dir, 'failures.log'), '');
}
