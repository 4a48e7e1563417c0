// A raw.csv row for pure tests: a successful 10MiB/256MB iteration unless overridden.
import type { RawRow } from '../lib/results.ts';

export function row(over: Partial<RawRow>): RawRow {
  return {
    file_size: '10MiB', memory_limit: '256MB', duration_seconds: 1, peak_memory_bytes: null, http_status: 200,
    exit_reason: 'success', iteration: 1, file_size_bytes: 10 * 2 ** 20, memory_limit_mb: 256, transfer_seconds: null,
    processing_seconds: null, throughput_mib_s: null, server_peak_rss_bytes: null, sha256_ok: true, started_at: '', error: '', host_cpu_pressure_pct: null,
    failure_phase: null,
    server_cpu_user_seconds: null, server_cpu_system_seconds: null, server_write_bytes: null, data_dir_bytes: null,
    download_ttfb_seconds: null, download_mib_s: null, concurrency: 1,
    ...over,
  };
}
