// Memory cgroups for the local provider: cgroup v2 (memory.max) where its
// memory controller is available, else v1 (memory.limit_in_bytes), else none.
// Written by hand over the cgroup files because no maintained npm package
// manages cgroups, and systemd-run needs a systemd that is not always there.
//   const cg = createMemoryCgroup('ups-123-256', 256 * 2 ** 20)  // or null, with why
import fs from 'node:fs';
import path from 'node:path';
import { pidAlive } from '../pids.ts';

export interface MemoryCgroup {
  version: 1 | 2;
  dir: string;
  /** The file a process writes its pid into to join. */
  procsFile: string;
  limitBytes: number;
  /** Resets the peak counter where the kernel allows; returns whether it did. */
  resetPeak(): boolean;
  /** Peak usage in bytes since the last reset (includes page cache: read it beside the server's own RSS). */
  readPeak(): number | null;
  /** Usage in bytes now: polled for a peak where the kernel cannot reset its own. */
  readCurrent(): number | null;
  readOomKills(): number;
  /** Pids still inside. */
  pids(): number[];
  /** Kills what is left inside and removes the cgroup; never throws. */
  remove(): void;
}

const read = (f: string) => fs.readFileSync(f, 'utf8');
const tryRead = (f: string) => { try { return read(f); } catch { return null; } };
/** A single-number cgroup file (bytes), or null when it cannot be read. */
const tryReadNumber = (f: string) => { const t = tryRead(f); return t === null ? null : Number(t.trim()); };

/** Where a v2 hierarchy with the memory controller is mounted, if any. */
function v2Root(): string | null {
  for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    const controllers = tryRead(path.join(root, 'cgroup.controllers'));
    if (controllers?.split(/\s+/).includes('memory')) return root;
  }
  return null;
}

function v1Root(): string | null {
  const root = '/sys/fs/cgroup/memory';
  return fs.existsSync(path.join(root, 'memory.limit_in_bytes')) ? root : null;
}

/** Creates a memory cgroup with the limit; returns it, or the reason none could be made. */
export function createMemoryCgroup(name: string, limitBytes: number): MemoryCgroup | { error: string } {
  const errors: string[] = [];
  const v2 = v2Root();
  if (v2) {
    try { return makeV2(v2, name, limitBytes); } catch (e) { errors.push(`cgroup v2 at ${v2}: ${(e as Error).message}`); }
  } else {
    errors.push('no cgroup v2 hierarchy with the memory controller');
  }
  const v1 = v1Root();
  if (v1) {
    try { return makeV1(v1, name, limitBytes); } catch (e) { errors.push(`cgroup v1 at ${v1}: ${(e as Error).message}`); }
  } else {
    errors.push('no cgroup v1 memory hierarchy');
  }
  return { error: errors.join('; ') };
}

function common(dir: string, version: 1 | 2, limitBytes: number) {
  const procsFile = path.join(dir, 'cgroup.procs');
  const pids = () => (tryRead(procsFile) ?? '').split('\n').filter(Boolean).map(Number);
  const remove = () => {
    for (let attempt = 0; attempt < 50; attempt++) {
      const left = pids();
      for (const pid of left) { try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ } }
      try { fs.rmdirSync(dir); return; } catch { /* processes still exiting */ }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  };
  return { version, dir, procsFile, limitBytes, pids, remove };
}

function makeV1(root: string, name: string, limitBytes: number): MemoryCgroup {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  try {
    fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limitBytes));
    // Without this a limited server could swap instead of being OOM-killed, where the host has swap.
    const memsw = path.join(dir, 'memory.memsw.limit_in_bytes');
    if (fs.existsSync(memsw)) fs.writeFileSync(memsw, String(limitBytes));
    try { fs.writeFileSync(path.join(dir, 'memory.swappiness'), '0'); } catch { /* not allowed everywhere */ }
  } catch (e) {
    fs.rmdirSync(dir);
    throw e;
  }
  return {
    ...common(dir, 1, limitBytes),
    resetPeak: () => { try { fs.writeFileSync(path.join(dir, 'memory.max_usage_in_bytes'), '0'); return true; } catch { return false; } },
    readPeak: () => tryReadNumber(path.join(dir, 'memory.max_usage_in_bytes')),
    readCurrent: () => tryReadNumber(path.join(dir, 'memory.usage_in_bytes')),
    readOomKills: () => Number(/oom_kill (\d+)/.exec(tryRead(path.join(dir, 'memory.oom_control')) ?? '')?.[1] ?? 0),
  };
}

function makeV2(root: string, name: string, limitBytes: number): MemoryCgroup {
  const parentControl = path.join(root, 'cgroup.subtree_control');
  if (!(tryRead(parentControl) ?? '').split(/\s+/).includes('memory')) fs.writeFileSync(parentControl, '+memory');
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  try {
    fs.writeFileSync(path.join(dir, 'memory.max'), String(limitBytes));
    if (fs.existsSync(path.join(dir, 'memory.swap.max'))) fs.writeFileSync(path.join(dir, 'memory.swap.max'), '0');
  } catch (e) {
    fs.rmdirSync(dir);
    throw e;
  }
  // From Linux 6.12 a write to memory.peak resets it, but only for reads through the same open file:
  // one descriptor, kept for the cgroup's life. Older kernels refuse the write and keep the peak since creation.
  const peakFile = path.join(dir, 'memory.peak');
  let peakFd: number | null = null;
  const peakFdOpen = () => {
    if (peakFd === null) { try { peakFd = fs.openSync(peakFile, 'r+'); } catch { try { peakFd = fs.openSync(peakFile, 'r'); } catch { /* no memory.peak */ } } }
    return peakFd;
  };
  const base = common(dir, 2, limitBytes);
  return {
    ...base,
    resetPeak: () => { try { fs.writeSync(peakFdOpen()!, 'reset'); return true; } catch { return false; } },
    readPeak: () => {
      const fd = peakFdOpen();
      if (fd === null) return null;
      const buf = Buffer.alloc(32);
      try { return Number(buf.toString('utf8', 0, fs.readSync(fd, buf, 0, buf.length, 0)).trim()); } catch { return null; }
    },
    readCurrent: () => tryReadNumber(path.join(dir, 'memory.current')),
    remove: () => {
      if (peakFd !== null) { try { fs.closeSync(peakFd); } catch { /* closed */ } peakFd = null; }
      base.remove();
    },
    readOomKills: () => Number(/oom_kill (\d+)/.exec(tryRead(path.join(dir, 'memory.events')) ?? '')?.[1] ?? 0),
  };
}

/**
 * Removes memory cgroups named `<prefix><pid>-...` whose creating process is gone (a run killed
 * with SIGKILL cannot clean up), killing the servers still inside; returns what was removed.
 */
export function sweepOrphanCgroups(prefix: string): string[] {
  const removed: string[] = [];
  for (const root of ['/sys/fs/cgroup/memory', '/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    let names: string[];
    try { names = fs.readdirSync(root); } catch { continue; }
    for (const name of names) {
      const pid = Number(name.startsWith(prefix) ? name.slice(prefix.length).split('-')[0] : NaN);
      if (!Number.isInteger(pid) || pid <= 0 || pidAlive(pid)) continue;
      const dir = path.join(root, name);
      common(dir, 1, 0).remove();
      if (!fs.existsSync(dir)) removed.push(dir);
    }
  }
  return removed;
}

export function isCgroup(x: MemoryCgroup | { error: string }): x is MemoryCgroup {
  return !('error' in x);
}
