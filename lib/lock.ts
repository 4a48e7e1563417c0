// One run-tests process per results folder: a pid file, run.lock, held while a
// run writes the folder and removed when the process exits. A second run or
// --resume on a folder whose writer still runs is refused with that pid (two
// writers appended 7 rows for a 4-iteration case); the lock of a process that
// is gone (killed with SIGKILL, a crash) is taken over by its successor.
//   lockRunDir('results/20261124-101500')   // or an InputError naming the holder
import fs from 'node:fs';
import path from 'node:path';
import { describeFsError } from './dirs.ts';
import { InputError } from './errors.ts';
import { pidAlive } from './pids.ts';

export const LOCK_FILE = 'run.lock';
const held = new Set<string>();

process.on('exit', () => {
  for (const file of held) { try { fs.unlinkSync(file); } catch { /* already gone */ } }
});

/** Takes `dir`'s lock for this process (a no-op when it already holds it); throws when a live process holds it. */
export function lockRunDir(dir: string): void {
  const file = path.join(dir, LOCK_FILE);
  if (held.has(file)) return;
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      held.add(file);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot write ${file}: ${describeFsError(e, dir)}`);
      if (attempt === 3) throw e;
    }
    const pid = Number(readOr(file, '').trim());
    if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) {
      throw new InputError(`${dir} is being written by run-tests pid ${pid} (${file}): wait for it to end, or stop it, then try again`);
    }
    // Its holder is gone (or the file was cut short): take it over. Two successors of one dead holder
    // starting in the same few milliseconds could both get it (no compare-and-swap on a file); that
    // takes two resumes started together after a crash.
    try { fs.unlinkSync(file); } catch { /* another successor removed it first */ }
  }
}

/** Gives `dir`'s lock back (the run that held it is done with the folder); a no-op when this process does not hold it. */
export function unlockRunDir(dir: string): void {
  const file = path.join(dir, LOCK_FILE);
  if (!held.delete(file)) return;
  try { fs.unlinkSync(file); } catch { /* already gone */ }
}

function readOr(file: string, fallback: string): string {
  try { return fs.readFileSync(file, 'utf8'); } catch { return fallback; }
}
