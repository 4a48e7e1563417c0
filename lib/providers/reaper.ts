// Nothing the suite starts outlives it, even when it is killed with SIGKILL
// (a CI time limit, the OOM killer), which runs no handler of its own:
// - a process it spawns itself (the local server, QEMU) starts through
//   `setpriv --pdeathsig KILL` (util-linux), so the kernel kills it when the
//   suite goes. The signal follows the thread that forked it: Node spawns from
//   its main thread, which lives as long as the process;
// - a process it does not parent (a Vagrant guest's QEMU, started by libvirtd)
//   is given to a watcher, one small process per run that holds a pipe from
//   the suite and kills what it was given when that pipe closes.
// The sweeps of the next run (cgroups, data folders, netns, vagrant projects)
// stay as the second line of defence, for what is not a process.
//
//   spawn(...diesWithSuite(['qemu-system-x86_64', ...args]))
//   killWithSuite(qemuPid)
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { Socket } from 'node:net';
import path from 'node:path';
import { SUITE_DIR } from '../paths.ts';

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv'].find((f) => fs.existsSync(f)) ?? null;

/** `argv` prefixed so the process it starts is killed when the suite dies; unchanged without setpriv (the sweeps remain). */
export function diesWithSuite(argv: string[]): string[] {
  return SETPRIV ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...argv] : argv;
}

/** A process's start time in clock ticks since boot (/proc/PID/stat field 22): tells it apart from a later one with its pid. */
export function startTicks(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

let watcher: ChildProcess | null = null;

/** Has `pid` (not a child of the suite) killed when the suite dies, however it dies. */
export function killWithSuite(pid: number): void {
  const ticks = startTicks(pid);
  if (ticks === null) return; // already gone
  // Spawned directly: zx would tie the pipe's lifetime to a promise; this one must live as long as the suite.
  // Its own session: a terminal's Ctrl-C goes to the suite, which tears down in order.
  watcher ??= spawn(process.execPath, ['--import', path.join(SUITE_DIR, 'node_modules', 'tsx', 'dist', 'loader.mjs'),
    path.join(SUITE_DIR, 'lib', 'providers', 'reaper-watch.mts')], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  watcher.unref();
  watcher.on('error', () => { /* no watcher: the sweeps of the next run remain */ });
  const pipe = watcher.stdin as Socket;
  pipe.write(`${pid} ${ticks}\n`);
  pipe.unref(); // the pipe must not keep the suite alive once it is otherwise done
}
