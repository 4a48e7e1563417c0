// The raw.csv row's one table (lib/row.ts): every column is written, read back
// to the same value, present in a new row, and named in its own errors; a file
// from before the appended columns still reads.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Papa from 'papaparse';
import { newRow, parseRow, RAW_COLUMNS, RAW_MIN_COLUMNS, rawCsvHeader, rawCsvLine, type RawRow } from '../lib/row.ts';

const full: RawRow = {
  file_size: '1MiB', memory_limit: '256MB', duration_seconds: 1.5, peak_memory_bytes: 1000, http_status: 200, exit_reason: 'success',
  iteration: 3, file_size_bytes: 2 ** 20, memory_limit_mb: 256, transfer_seconds: 1, processing_seconds: 0.5, throughput_mib_s: 0.66,
  server_peak_rss_bytes: 2000, sha256_ok: true, started_at: '2026-12-06T00:00:00Z', error: 'a, "quoted" error', host_cpu_pressure_pct: 3.5,
  failure_phase: null, server_cpu_user_seconds: 0.1, server_cpu_system_seconds: 0.2, server_write_bytes: 3000, data_dir_bytes: 4000,
  download_ttfb_seconds: 0.01, download_mib_s: 300, concurrency: 2, iteration_peak_rss_bytes: 41_000_000,
};
const cells = (line: string) => Papa.parse<string[]>(line.trim()).data[0];
const header = cells(rawCsvHeader());

test('every column round-trips through its line, and a new row has every column', () => {
  assert.deepEqual(Object.keys(full).sort(), [...RAW_COLUMNS].sort(), 'the literal row covers every column');
  assert.deepEqual(parseRow(cells(rawCsvLine(full)), header, 'x'), full);
  const fresh = newRow({ size: { label: '1MiB', bytes: 2 ** 20 }, memoryMb: 256, concurrency: 2, iteration: 3 }, 'now');
  assert.deepEqual(Object.keys(fresh).sort(), [...RAW_COLUMNS].sort());
  assert.equal(fresh.peak_memory_bytes, null);
  assert.equal(fresh.concurrency, 2);
});

test('a file from before the appended columns reads them as absent (empty, concurrency 1)', () => {
  const old = header.slice(0, RAW_MIN_COLUMNS);
  const r = parseRow(cells(rawCsvLine(full)).slice(0, RAW_MIN_COLUMNS), old, 'x');
  assert.equal(r.concurrency, 1);
  assert.equal(r.download_mib_s, null);
  assert.equal(r.failure_phase, null);
  assert.equal(r.duration_seconds, 1.5);
});

test('each bad cell is named with its column', () => {
  const bad = (col: string, v: string) => {
    const c = cells(rawCsvLine(full));
    c[header.indexOf(col)] = v;
    return () => parseRow(c, header, 'raw.csv line 2');
  };
  assert.throws(bad('duration_seconds', 'x'), /raw.csv line 2, column duration_seconds: "x" is not a number/);
  assert.throws(bad('peak_memory_bytes', '-1'), /column peak_memory_bytes: "-1" is negative/);
  assert.throws(bad('iteration', '0'), /column iteration: "0" must be above 0/);
  assert.throws(bad('throughput_mib_s', '0'), /column throughput_mib_s: "0" must be above 0 \(or empty\)/);
  assert.throws(bad('exit_reason', 'boom'), /column exit_reason: "boom" is not one of success, timeout/);
  assert.throws(bad('sha256_ok', 'yes'), /column sha256_ok: "yes" is not true, false or empty/);
  assert.throws(bad('failure_phase', 'later'), /column failure_phase: "later" is not one of start, upload, processing, verification or empty/);
  assert.throws(bad('duration_seconds', '0'), /column duration_seconds: "0" must be above 0 for a success/);
  assert.throws(() => parseRow(['1MiB'], header, 'raw.csv line 9'), new RegExp(`raw.csv line 9: 1 of ${RAW_COLUMNS.length} columns \\(truncated or malformed row\\)`));
});
