// Every folder the suite makes (results, the cache's test files, stand-in
// bundle, built binaries, guest images) is made here, parent by parent:
// Node 20's recursive mkdir spins forever at full CPU, deaf to signals, on a
// path under /proc (mkdir gives ENOENT though the parent exists, and it
// retries). A folder that cannot be made is bad input (exit 2), named.
//   makeDirs(path.join(cacheDir(), 'testfiles'), 'the cache folder (UPS_CACHE_DIR)')
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from './errors.ts';
import { formatBytes } from './units.ts';

/** mkdir -p; `what` names the folder in the error, e.g. "the output folder". */
export function makeDirs(dir: string, what: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new InputError(`cannot create ${what} ${dir}: ${describeFsError(e, path.dirname(d))} at ${d}`);
    }
  }
  if (!fs.statSync(dir).isDirectory()) throw new InputError(`${what} ${dir}: not a folder`);
}

/** An fs error as one line, e.g. "ENOSPC: no space left on device (0 B free in /mnt/results)". */
export function describeFsError(e: unknown, dir: string): string {
  const err = e as NodeJS.ErrnoException;
  const what: Record<string, string> = {
    ENOSPC: 'no space left on device', EROFS: 'read-only file system', EACCES: 'permission denied', EPERM: 'operation not permitted',
    EDQUOT: 'disk quota exceeded',
  };
  if (!err.code) return err.message;
  let free = '';
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT') {
    try { const st = fs.statfsSync(dir); free = ` (${formatBytes(st.bavail * st.bsize)} free in ${dir})`; } catch { /* no figure, then */ }
  }
  // Node's own text, "ENOENT: no such file or directory, mkdir '/x'", without the code and the call.
  return `${err.code}: ${what[err.code] ?? err.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*$/, '')}${free}`;
}
