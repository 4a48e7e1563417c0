// A raw.csv row for pure tests: a successful 10MiB/256MB iteration unless overridden.
import { newRow, type RawRow } from '../lib/row.ts';

export function row(over: Partial<RawRow>): RawRow {
  return {
    ...newRow({ size: { label: '10MiB', bytes: 10 * 2 ** 20 }, memoryMb: 256, iteration: 1 }, ''),
    duration_seconds: 1, http_status: 200, sha256_ok: true,
    ...over,
  };
}
