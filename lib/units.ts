// Sizes and their formatting. Binary units (KiB, MiB, GiB) are powers of 1024,
// decimal units (KB, MB, GB) powers of 1000: each means what it says.
//   parseSize('100MiB') === 104857600; parseSize('1GB') === 1e9; formatBytes(104857600) === '100 MiB'
import { MEMORY_MB, parseWhole, SIZE_BYTES } from './bounds.ts';

const UNITS: Record<string, number> = {
  B: 1,
  KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4,
  KB: 1000, MB: 1000 ** 2, GB: 1000 ** 3, TB: 1000 ** 4,
};

/** The units a size is written in, as error messages and --help list them. */
export const SIZE_UNITS = Object.keys(UNITS).join(', ');

/** Parses "100MiB", "1.5 GiB", "500MB", "1024B"; a unit is required (a bare "4" was 4 bytes, rarely what was meant). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  if (!m) throw new Error(`not a size (use e.g. 100MiB, 1GiB, 500MB)`);
  if (m[2] === '') throw new Error(`a size needs a unit, e.g. ${m[1]}MiB or ${m[1]}B (units: ${SIZE_UNITS})`);
  const factor = UNITS[m[2]];
  if (factor === undefined) throw new Error(`unknown unit "${m[2]}" (units: ${SIZE_UNITS})`);
  const exact = Number(m[1]) * factor;
  const bytes = Math.round(exact);
  // 1.5KiB is 1536 bytes; 1.25B or 0.1KiB is no whole number of bytes (allowing for binary fractions' rounding).
  if (Math.abs(exact - bytes) > 1e-6 * Math.max(1, exact)) throw new Error(`not a whole number of bytes (${exact} B)`);
  if (bytes < SIZE_BYTES.min) throw new Error('must be at least 1 byte');
  // 9007199254740993B is past exact integers: SIZE_BYTES.max refuses it too.
  if (bytes > SIZE_BYTES.max) throw new Error(SIZE_BYTES.over);
  return bytes;
}

/** Canonical compact label for a size as written, e.g. "100MiB" (used in raw.csv's file_size). */
export function sizeLabel(text: string): string {
  return text.replace(/\s+/g, '');
}

/** Human formatting with binary units, e.g. 104857600 -> "100 MiB", 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  const text = i === 0 ? String(v) : Number(v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)).toString();
  return `${text} ${units[i]}`;
}

export const MiB = 1024 ** 2;

/** Bytes to MiB, for reports. */
export function toMiB(bytes: number): number {
  return bytes / MiB;
}

/** Parses a positive integer, e.g. an iteration count or a memory limit in MB; throws otherwise. */
export function parsePositiveInt(text: string | number): number {
  const s = String(text).trim();
  if (!/^\d+$/.test(s) || Number(s) <= 0) throw new Error('not a positive whole number');
  if (!Number.isSafeInteger(Number(s))) throw new Error(`too large (at most ${Number.MAX_SAFE_INTEGER})`);
  return Number(s);
}

/** Parses a memory limit in MB: 256, "256", "256MB". MB as QEMU -m and Vagrant read it (2^20 bytes), so the cgroup gets the same bytes a VM gets. */
export function parseMemoryMb(text: string | number): number {
  return parseWhole(MEMORY_MB, String(text).trim().replace(/\s*MB$/i, ''));
}
