// What the server spends on an upload: CPU seconds (user, system), bytes it
// sends to storage, and the disk space of its data folder. Read from the
// server's own /proc entry (all its threads; children it waited for in
// cutime/cstime), on the host by the local provider and inside the VM by the
// guest script, which prints the same files for parseProcStat/parseProcIo.
//
//   const a = readProcSpend(pid); ...upload...; const b = readProcSpend(pid)
//   spendBetween(a, b, CLK_TCK)  // { cpuUserSeconds: 1.23, cpuSystemSeconds: 0.4, writeBytes: 2147483648 }
//
// write_bytes counts what the process dirtied for storage at write time, also
// a spool deleted before writeback ever reached the disk: PicoShare's upload
// path writes the file twice (spool, then SQLite), and that is what it costs.
import fs from 'node:fs';
import path from 'node:path';

/** Cumulative counters of one process at one moment. */
export interface ProcSpend {
  /** utime + cutime, in clock ticks. */
  userTicks: number;
  /** stime + cstime, in clock ticks. */
  systemTicks: number;
  /** /proc/PID/io write_bytes; null where the kernel keeps no task I/O accounting. */
  writeBytes: number | null;
}

/** Spent between two readings; null where a reading is missing. */
export interface ServerSpend {
  cpuUserSeconds: number | null;
  cpuSystemSeconds: number | null;
  writeBytes: number | null;
  /** Disk space of the data folder (store and spool) at the end: allocated blocks, as du counts them. */
  dataDirBytes: number | null;
}

export const NO_SPEND: ServerSpend = { cpuUserSeconds: null, cpuSystemSeconds: null, writeBytes: null, dataDirBytes: null };

/** Clock ticks per second of /proc/PID/stat: USER_HZ, 100 on every Linux the suite runs on (getconf CLK_TCK). */
export const CLK_TCK = 100;

/** utime, stime, cutime, cstime of a /proc/PID/stat line; null for anything else. Pure. */
export function parseProcStat(text: string): { userTicks: number; systemTicks: number } | null {
  // The command name (field 2) is in parentheses and may hold spaces or parentheses: fields count from the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const f = text.slice(close + 1).trim().split(/\s+/);
  // After the name: state is field 3, so utime (14) is f[11], stime f[12], cutime f[13], cstime f[14].
  const n = [f[11], f[12], f[13], f[14]].map(Number);
  if (n.some((x) => !Number.isFinite(x) || x < 0) || f.length < 15) return null;
  return { userTicks: n[0] + n[2], systemTicks: n[1] + n[3] };
}

/** write_bytes of a /proc/PID/io text, or null. Pure. */
export function parseProcIo(text: string): number | null {
  const m = /^write_bytes:\s*(\d+)/m.exec(text);
  return m ? Number(m[1]) : null;
}

/** What was spent from `a` to `b`; a counter that went backwards (another process) is null, not negative. Pure. */
export function spendBetween(a: ProcSpend | null, b: ProcSpend | null, clkTck: number): Omit<ServerSpend, 'dataDirBytes'> {
  const delta = (x: number | null | undefined, y: number | null | undefined) =>
    x === null || x === undefined || y === null || y === undefined || y < x ? null : y - x;
  const ticks = (d: number | null) => (d === null ? null : d / clkTck);
  return {
    cpuUserSeconds: ticks(delta(a?.userTicks, b?.userTicks)),
    cpuSystemSeconds: ticks(delta(a?.systemTicks, b?.systemTicks)),
    writeBytes: delta(a?.writeBytes, b?.writeBytes),
  };
}

/** The process's counters now, or null once it is gone. */
export function readProcSpend(pid: number): ProcSpend | null {
  try {
    const stat = parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    if (!stat) return null;
    let writeBytes: number | null = null;
    try { writeBytes = parseProcIo(fs.readFileSync(`/proc/${pid}/io`, 'utf8')); } catch { /* no task I/O accounting */ }
    return { ...stat, writeBytes };
  } catch {
    return null;
  }
}

/** Allocated bytes under a folder (st_blocks x 512, as du), without following links; null when it cannot be read. */
export function diskUsageBytes(dir: string): number | null {
  let sum = 0;
  const todo = [dir];
  let readable = false;
  while (todo.length > 0) {
    const p = todo.pop()!;
    let st: fs.Stats;
    try { st = fs.lstatSync(p); } catch { continue; } // a spool removed between readdir and lstat
    readable = true;
    sum += st.blocks * 512;
    if (st.isDirectory()) {
      try { for (const n of fs.readdirSync(p)) todo.push(path.join(p, n)); } catch { /* gone meanwhile */ }
    }
  }
  return readable ? sum : null;
}
