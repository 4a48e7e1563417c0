// The watcher of lib/providers/reaper.ts: reads "PID START_TICKS" lines on stdin from
// the suite; when stdin closes (the suite exited, or was killed), SIGKILLs
// each of those processes that is still the one it was given, and exits.
import { startTicks } from './reaper.ts';

const given: { pid: number; ticks: string }[] = [];
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  buffered += chunk;
  const lines = buffered.split('\n');
  buffered = lines.pop() ?? '';
  for (const line of lines) {
    const [pid, ticks] = line.trim().split(' ');
    if (Number(pid) > 0 && ticks) given.push({ pid: Number(pid), ticks });
  }
});
process.stdin.on('close', () => {
  for (const p of given) {
    if (startTicks(p.pid) !== p.ticks) continue; // gone, its pid perhaps another's now
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
  }
  process.exit(0);
});
// Signals meant for the suite's process group are not ours: only the pipe's end ends this process.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => {});
