// Sizes and their formatting. Binary units (KiB, MiB, GiB) are powers of 1024,
// decimal units (KB, MB, GB) powers of 1000: each means what it says.
//   parseSize('100MiB') === 104857600; parseSize('1GB') === 1e9; formatBytes(104857600) === '100 MiB'

const UNITS: Record<string, number> = {
  B: 1,
  KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4,
  KB: 1000, MB: 1000 ** 2, GB: 1000 ** 3, TB: 1000 ** 4,
};

/** Parses "100MiB", "1.5 GiB", "500MB", "1024" (bytes); throws on anything else. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  if (!m) throw new Error(`not a size: "${text}" (use e.g. 100MiB, 1GiB, 500MB)`);
  const unit = m[2] === '' ? 'B' : m[2];
  const factor = UNITS[unit];
  if (factor === undefined) {
    throw new Error(`unknown unit "${unit}" in "${text}" (use B, KiB, MiB, GiB, KB, MB, GB)`);
  }
  const bytes = Math.round(Number(m[1]) * factor);
  if (bytes <= 0) throw new Error(`size must be positive: "${text}"`);
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
  if (!/^\d+$/.test(s) || Number(s) <= 0) throw new Error(`not a positive whole number: "${text}"`);
  return Number(s);
}

/** Parses a memory limit in MB: 256, "256", "256MB". MB as QEMU -m and Vagrant read it (2^20 bytes), so the cgroup gets the same bytes a VM gets. */
export function parseMemoryMb(text: string | number): number {
  const s = String(text).trim().replace(/\s*MB$/i, '');
  return parsePositiveInt(s);
}
