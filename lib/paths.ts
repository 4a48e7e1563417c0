// Where the suite keeps things: its own folder (for templates, the stand-in)
// the cache outside the repo (test files, guest images, built binaries), and
// where the local provider's servers keep their data.
import fs from 'node:fs';
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

/** Where each environment's server data and spool go: UPS_LOCAL_DATA_DIR, else the system temp folder. */
export function localDataParent(): string {
  return path.resolve(process.env.UPS_LOCAL_DATA_DIR || os.tmpdir());
}

/** Why localDataParent() cannot hold the servers' data folders, or null: checked before a run starts. */
export function localDataParentProblem(): string | null {
  const dir = localDataParent();
  const what = process.env.UPS_LOCAL_DATA_DIR ? `UPS_LOCAL_DATA_DIR=${process.env.UPS_LOCAL_DATA_DIR}` : `the temp folder ${dir}`;
  try {
    if (!fs.statSync(dir).isDirectory()) return `${what}: not a folder`;
    fs.accessSync(dir, fs.constants.W_OK);
    return null;
  } catch (e) {
    return `${what}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : (e as Error).message}`;
  }
}
