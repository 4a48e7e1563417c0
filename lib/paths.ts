// Where the suite keeps things: its own folder (for templates, the stand-in)
// and the cache outside the repo (test files, guest images, built binaries).
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The suite's top-level folder, whatever the current directory. */
export const SUITE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** UPS_CACHE_DIR, else $XDG_CACHE_HOME/upload-perf-suite, else ~/.cache/upload-perf-suite. */
export function cacheDir(): string {
  if (process.env.UPS_CACHE_DIR) return path.resolve(process.env.UPS_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'upload-perf-suite');
}
