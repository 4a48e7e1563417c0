// The machine canary: a fixed reference job with no project code in it, timed
// between cases, so a run records how fast the machine itself was while it
// ran. Its CPU part hashes a fixed buffer; its disk part writes a fixed file
// into the folder where the servers keep their data and syncs it. Two runs
// whose canaries differ were measured on a machine that changed between them
// (compare-runs says so); within a run, the series shows drift.
//
//   const c = runCanary(dataParent)   // { cpu_seconds: 0.11, disk_seconds: 0.05 }
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pidAlive } from './pids.ts';
import { MiB } from './units.ts';

/** What the canary does, fixed so that every run's figures mean the same. */
export const CANARY = { cpuBytes: 64 * MiB, diskBytes: 16 * MiB, writeBytes: MiB } as const;

export interface CanaryTiming {
  /** sha256 of CANARY.cpuBytes fixed bytes. */
  cpu_seconds: number;
  /** CANARY.diskBytes written in CANARY.writeBytes writes, then fsync. */
  disk_seconds: number;
}

// One buffer for the whole process: the job times hashing, not allocating.
let buffer: Buffer | null = null;
function fixedBytes(): Buffer {
  if (!buffer) {
    buffer = Buffer.alloc(CANARY.cpuBytes);
    for (let i = 0; i < buffer.length; i += 4) buffer.writeUInt32LE((i * 2654435761) >>> 0, i);
  }
  return buffer;
}

/** The canary's CPU part alone, in seconds: what the plan scales its estimate by (lib/stats/plan.ts). */
export function cpuCanarySeconds(): number {
  const bytes = fixedBytes();
  const t0 = process.hrtime.bigint();
  crypto.createHash('sha256').update(bytes).digest();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Runs the canary once; `dir` is where its file is written (and removed). Synchronous on purpose: nothing else runs meanwhile. */
export function runCanary(dir: string): CanaryTiming {
  const bytes = fixedBytes();
  const cpu = cpuCanarySeconds();
  const t1 = process.hrtime.bigint();
  const file = path.join(dir, `ups-canary-${process.pid}.bin`);
  // A run killed (SIGKILL) while it wrote its canary left the file: its successor removes it.
  for (const n of fs.readdirSync(dir)) {
    const pid = Number(/^ups-canary-(\d+)\.bin$/.exec(n)?.[1] ?? NaN);
    if (Number.isInteger(pid) && !pidAlive(pid)) fs.rmSync(path.join(dir, n), { force: true });
  }
  const fd = fs.openSync(file, 'w');
  try {
    for (let off = 0; off < CANARY.diskBytes; off += CANARY.writeBytes) fs.writeSync(fd, bytes, off % bytes.length, CANARY.writeBytes);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  const t2 = process.hrtime.bigint();
  return { cpu_seconds: cpu, disk_seconds: Number(t2 - t1) / 1e9 };
}
