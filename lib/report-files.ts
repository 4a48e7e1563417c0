// A run folder's report.md with its charts (throughput, memory timelines, the
// canary), drawn from the rows and record in memory and the folder's samples.csv
// and canary.csv; lib/render/report.ts renders the Markdown.
//   await writeReportFiles('results/20261124-101500', rows, record)
import fs from 'node:fs';
import path from 'node:path';
import { canaryChartSvg, memoryTimelineSvg, throughputChartSvg } from './render/charts.ts';
import { SUITE_DIR } from './paths.ts';
import { renderReport } from './render/report.ts';
import { parseCanaryCsv, parseSamplesCsv, writeFileAtomic } from './results.ts';
import type { RawRow } from './row.ts';
import type { RunRecord } from './run-record.ts';

export const REPORT_TEMPLATE = path.join(SUITE_DIR, 'templates', 'report.md.mustache');

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
