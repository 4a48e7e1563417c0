// Memory cgroups for the local provider: cgroup v2 (memory.max) where its
// memory controller is available, else v1 (memory.limit_in_bytes), else none.
// Written by hand over the cgroup files because no maintained npm package
// manages cgroups, and systemd-run needs a systemd that is not always there.
//   const cg = createMemoryCgroup('ups-123-256', 256 * 2 ** 20)  // or null, with why
import fs from 'node:fs';
import path from 'node:path';
import { pidAlive } from './pids.ts';

export interface MemoryCgroup {
  version: 1 | 2;
  dir: string;
  /** The file a process writes its pid into to join. */
  procsFile: string;
  limitBytes: number;
  /** Resets the peak counter where the kernel allows; returns whether it did. */
  resetPeak(): boolean;
  /** Peak usage in bytes (includes page cache: read it beside the server's own RSS). */
  readPeak(): number | null;
  readOomKills(): number;
  /** Pids still inside. */
  pids(): number[];
  /** Kills what is left inside and removes the cgroup; never throws. */
  remove(): void;
}

const read = (f: string) => fs.readFileSync(f, 'utf8');
const tryRead = (f: string) => { try { return read(f); } catch { return null; } };

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
    readPeak: () => { const t = tryRead(path.join(dir, 'memory.max_usage_in_bytes')); return t === null ? null : Number(t.trim()); },
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
  return {
    ...common(dir, 2, limitBytes),
    // Writing memory.peak resets it from Linux 6.12 on; older kernels keep the peak since creation.
    resetPeak: () => { try { fs.writeFileSync(path.join(dir, 'memory.peak'), 'reset'); return true; } catch { return false; } },
    readPeak: () => { const t = tryRead(path.join(dir, 'memory.peak')); return t === null ? null : Number(t.trim()); },
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
