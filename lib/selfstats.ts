// The suite's own footprint, for soak runs: with UPS_SELF_STATS=1 run-tests
// prints one line per iteration to stderr, e.g.
//   self-stats iteration=12 rss_bytes=151003136 heap_used_bytes=23330816 fds=24
// so a long run shows whether its RSS or open file descriptors creep.
import fs from 'node:fs';

export interface SelfStats { iteration: number; rssBytes: number; heapUsedBytes: number; fds: number }

export function selfStats(iteration: number): SelfStats {
  return {
    iteration,
    rssBytes: process.memoryUsage.rss(),
    heapUsedBytes: process.memoryUsage().heapUsed,
    fds: fs.readdirSync('/proc/self/fd').length,
  };
}

export function formatSelfStats(s: SelfStats): string {
  return `self-stats iteration=${s.iteration} rss_bytes=${s.rssBytes} heap_used_bytes=${s.heapUsedBytes} fds=${s.fds}`;
}

/** Every self-stats line in a run's stderr, in order. Pure. */
export function parseSelfStats(stderr: string): SelfStats[] {
  return [...stderr.matchAll(/^self-stats iteration=(\d+) rss_bytes=(\d+) heap_used_bytes=(\d+) fds=(\d+)$/gm)].map((m) => ({
    iteration: Number(m[1]), rssBytes: Number(m[2]), heapUsedBytes: Number(m[3]), fds: Number(m[4]),
  }));
}
