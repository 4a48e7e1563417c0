// The run folder's files: raw.csv (one row per iteration, appended as measured),
// failures.log, config.json. The columns below are the contract with
// compare-runs and anyone plotting the data; add columns at the end only.
import fs from 'node:fs';
import path from 'node:path';
import Papa from 'papaparse';

export const EXIT_REASONS = [
  'success', 'timeout', 'http_error', 'process_died', 'oom_killed', 'integrity_error', 'vm_failed',
] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

/** raw.csv columns, in order: the seed's six first, then ours. Units: bytes, seconds, MiB/s. */
export const RAW_COLUMNS = [
  'file_size',             // label as in the matrix, e.g. 100MiB
  'memory_limit',          // label, e.g. 256MB
  'duration_seconds',      // request start to response end (or to failure)
  'peak_memory_bytes',     // environment peak: VM MemTotal-MemAvailable, local cgroup peak
  'http_status',           // upload response status; empty when none came
  'exit_reason',           // one of EXIT_REASONS
  'iteration',             // 1-based within the case
  'file_size_bytes',
  'memory_limit_mb',
  'transfer_seconds',      // request start to last body byte sent
  'processing_seconds',    // last byte sent to response headers
  'throughput_mib_s',      // file_size_bytes / 2^20 / duration_seconds; empty unless success
  'server_peak_rss_bytes', // the server process's VmHWM
  'sha256_ok',             // true/false; empty when no download was made
  'started_at',            // ISO time the iteration started
  'error',                 // one-line detail for failures; the rest is in failures.log
] as const;
export type RawColumn = (typeof RAW_COLUMNS)[number];

export interface RawRow {
  file_size: string;
  memory_limit: string;
  duration_seconds: number;
  peak_memory_bytes: number | null;
  http_status: number | null;
  exit_reason: ExitReason;
  iteration: number;
  file_size_bytes: number;
  memory_limit_mb: number;
  transfer_seconds: number | null;
  processing_seconds: number | null;
  throughput_mib_s: number | null;
  server_peak_rss_bytes: number | null;
  sha256_ok: boolean | null;
  started_at: string;
  error: string;
}
