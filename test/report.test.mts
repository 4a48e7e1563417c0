// report.md's table and compare-runs must agree on which iterations a case's
// medians come from (lib/cases.ts): warm-up never counts, failures never feed
// medians but are always counted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { caseSide } from '../lib/cases.ts';
import fs from 'node:fs';
import path from 'node:path';
import { loadRun } from '../lib/load-run.ts';
import { summarizeCases } from '../lib/cases.ts';
import { renderReport } from '../lib/render/report.ts';
import { REPORT_TEMPLATE } from '../lib/report-files.ts';
import { parseRunRecord } from '../lib/run-record.ts';
import { assertGolden, RUNS } from './golden.mts';
import { row } from './raw-row.mts';

test('the report leaves warm-up out even when every later iteration failed', () => {
  const rows = [
    row({ iteration: 1, duration_seconds: 0.1 }), // a fast warm-up: must not become the median
    row({ iteration: 2, exit_reason: 'timeout', http_status: null, duration_seconds: 30 }),
    row({ iteration: 3, exit_reason: 'oom_killed', http_status: null, duration_seconds: 5 }),
  ];
  // compare-runs' side of the case, checked against the rows themselves (summarizeCases calls caseSide: no witness).
  const side = caseSide(rows, { matrix: { warmup_iterations: 1 } });
  assert.deepEqual(side.measured.map((r) => r.iteration), [2, 3], 'measured: every iteration after the warm-up');
  assert.deepEqual(side.successes, [], 'no success to take a median of');
  const [c] = summarizeCases(rows, parseRunRecord({ matrix: { warmup_iterations: 1 } }, 'config.json'));
  assert.equal(c.measured, 0);
  assert.equal(c.medianDurationSeconds, null);
  assert.equal(c.medianThroughputMiBs, null);
  assert.deepEqual(c.failures, { timeout: 1, oom_killed: 1 });
});

test('the server peak RSS cell shows the upload\'s peak and, where measured, the peak with its download', () => {
  const record = parseRunRecord({ matrix: { warmup_iterations: 1 } }, 'config.json');
  const MiB = 2 ** 20;
  const rows = [1, 2, 3].map((i) => row({ iteration: i, server_peak_rss_bytes: (140 + i) * MiB, iteration_peak_rss_bytes: (400 + i) * MiB }));
  const [c] = summarizeCases(rows, record);
  assert.equal(c.iterationPeakRssBytes, 403 * MiB, 'the largest, warm-up included, as the upload\'s peak');
  const template = fs.readFileSync(REPORT_TEMPLATE, 'utf8');
  const withDownload = renderReport({ runName: 'r', config: record, rows, chartFile: null }, template);
  assert.match(withDownload, /\| 143\.0 \/ 403\.0 \|/);
  const older = renderReport({ runName: 'r', config: record, rows: rows.map((r) => ({ ...r, iteration_peak_rss_bytes: null })), chartFile: null }, template);
  assert.match(older, /\| 143\.0 \|/, 'a raw.csv from before the column: the upload\'s peak alone');
});

test('the report and compare-runs take medians over the same rows, throughput derived when the column is empty', () => {
  const rows = [1, 2, 4, 5, 8].map((d, i) => row({ iteration: i + 1, duration_seconds: d }));
  rows.push(row({ iteration: 6, exit_reason: 'http_error', http_status: 500 }), row({ file_size: '20MiB', file_size_bytes: 20 * 2 ** 20, iteration: 1 }));
  const summaries = summarizeCases(rows, null); // no config.json: 1 when a case has more than one iteration
  const ten = summaries.find((s) => s.fileSize === '10MiB')!;
  const side = caseSide(rows.filter((r) => r.file_size === '10MiB'), null);
  assert.deepEqual(side.successes.map((r) => r.duration_seconds), [2, 4, 5, 8]);
  assert.equal(ten.measured, 4);
  assert.equal(ten.medianDurationSeconds, 4.5);
  assert.equal(ten.medianThroughputMiBs, (10 / 4 + 10 / 5) / 2);
  assert.deepEqual(ten.failures, { http_error: 1 });
  const twenty = summaries.find((s) => s.fileSize === '20MiB')!;
  assert.equal(twenty.measured, 1, 'a single iteration is not warm-up');
  assert.deepEqual(summaries.map((s) => s.fileSize), ['20MiB', '10MiB'], 'size largest first within a memory limit');
});

test('an interrupted run\'s report says how to finish it: --resume, for one side of a two-ref run on the parent folder', () => {
  const config = parseRunRecord({
    finished: false, stop_reason: 'interrupted by SIGINT', provider: 'local', started_at: '2026-11-26T00:00:00Z', ended_at: null,
    server: { kind: 'standin', path: null, git: null },
    matrix: { iterations: 3, warmup_iterations: 1, upload_timeout_seconds: 60 },
    provider_facts: {}, host: { hostname: 'h', cpu_model: 'c', cores: 2, kernel: 'k', memory_bytes: 1 },
  }, 'config.json');
  const template = fs.readFileSync(REPORT_TEMPLATE, 'utf8');
  const plain = renderReport({ runName: 'r', rows: [row({ iteration: 1 })], config, chartFile: null }, template);
  assert.match(plain, /Run not finished\*\*: interrupted by SIGINT\. .*`\.\/run-tests --resume` finishes it\./);
  const side = renderReport({ runName: 'r', rows: [row({ iteration: 1 })], config: { ...config, ab: { refs: ['a', 'b'], this_ref: 1, seed: 1, parent: 'p', order: '' } }, chartFile: null }, template);
  assert.match(side, /`\.\/run-tests --resume` on the parent folder finishes every side together/);
});

test('golden report.md for the fixture run (test/fixtures/runs/base)', () => {
  const run = loadRun(path.join(RUNS, 'base'));
  assertGolden(renderReport({ runName: run.name, rows: run.rows, config: run.config!, chartFile: 'throughput.svg' }, fs.readFileSync(REPORT_TEMPLATE, 'utf8')), 'report');
});

test('the report gives its context: stand-in knobs, resumes, measured (of N), what each memory column counts, a case\'s first error', () => {
  const config = parseRunRecord({
    finished: true, stop_reason: null, provider: 'local', started_at: '2026-11-26T00:00:00Z', ended_at: '2026-11-27T00:00:00Z',
    server: { kind: 'standin', path: null, git: null, standin_env: { STANDIN_THROTTLE_MIBS: '20' } },
    resumes: [{ started_at: '2026-11-26T23:00:00Z' }],
    matrix: { iterations: 2, warmup_iterations: 1, upload_timeout_seconds: 60 },
    provider_facts: {}, host: { hostname: 'h', cpu_model: 'c', cores: 2, kernel: 'k', memory_bytes: 1 },
  }, 'config.json');
  const rows = [
    row({ iteration: 1 }), row({ iteration: 2 }),
    row({ memory_limit: '96MB', memory_limit_mb: 96, iteration: 1, exit_reason: 'oom_killed', failure_phase: 'verification', error: 'killed for memory | after the 200' }),
    row({ memory_limit: '96MB', memory_limit_mb: 96, iteration: 2, exit_reason: 'timeout', failure_phase: 'processing', error: 'second' }),
  ];
  const md = renderReport({ runName: 'r', rows, config, chartFile: null }, fs.readFileSync(REPORT_TEMPLATE, 'utf8'));
  assert.match(md, /- Stand-in fault knobs: STANDIN_THROTTLE_MIBS=20 /);
  assert.match(md, /ended 2026-11-27T00:00:00Z; resumed 1 \(at 2026-11-26T23:00:00Z\): the span includes the time between/);
  assert.match(md, /\| 256MB \| 10MiB \| 1 \(of 2\) \|/);
  assert.match(md, /\| 1× oom_killed \(verification\), 1× timeout \(processing\) \| #1: killed for memory \/ after the 200 \|$/m);
  assert.match(md, /^Peak env memory: .*counts page cache/m);
  assert.match(md, /^Server peak RSS: .*can exceed the environment's peak, even the limit/m);
});
