// The contract every provider (local, qemu, vagrant) implements: bring one
// memory-limited environment up, run the server under test in it, sample its
// memory around each upload, and always tear down.
//
//   const env = await provider.up(256)        // one environment per memory limit
//   const url = await env.startServer()       // fresh data folder, ready on 127.0.0.1
//   await env.startSampling(); ...upload...; const s = await env.stopSampling()
//   await env.down(); await provider.close()   // close() takes down whatever is still up

import type { Say } from '../progress.ts';
import type { ServerSpend } from './spend.ts';

/** What runs as the server under test, as the run resolved it. */
export interface ServerSpec {
  kind: 'standin' | 'binary';
  /** Host path of the server binary (kind 'binary'). */
  binaryPath?: string;
  /**
   * The folder the server runs in: a built ref's source tree (PicoShare before
   * 1.3.8 reads ./templates and ./static from it), or server.workdir. A VM gets
   * a copy. Unset: the suite's own working directory.
   */
  workDir?: string;
  /** Extra environment for the server, e.g. the stand-in's fault knobs (STANDIN_*). */
  env: Record<string, string>;
}

/** Everything a provider needs to start the server; the secret never leaves memory or the server's env. */
export interface ServerLaunch {
  server: ServerSpec;
  secret: string;
  readinessTimeoutSeconds: number;
}

/** One sample of the timeline (about every 250 ms); null where the figure could not be read. */
export interface TimelinePoint {
  /** Seconds since startSampling() returned (host clock for local; the guest's uptime for VMs). */
  t: number;
  /** What the environment used: the cgroup's usage (local), MemTotal - MemAvailable (VM). */
  envMemoryBytes: number | null;
  /** The server's VmRSS. */
  serverRssBytes: number | null;
  /** Disk space of the server's data folder, spool included. */
  dataDirBytes: number | null;
}

/** Measurements taken between startSampling() and stopSampling(). */
export interface MemorySample {
  /** What the environment used at its peak, in bytes (VM: MemTotal - MemAvailable; local: the cgroup's peak). */
  peakMemoryBytes: number | null;
  /** The server process's own peak RSS in bytes (VmHWM), when the process could be read. */
  serverPeakRssBytes: number | null;
  /** Kernel OOM kills seen during the sample (cgroup oom_kill counter, or guest dmesg). */
  oomKills: number;
  /** Kernel lines about the OOM kill(s), for failures.log. */
  oomLines: string[];
  /** What the server spent between the two calls (lib/providers/spend.ts); its data folder's size at stopSampling(). */
  spend: ServerSpend;
  /** Every sample taken, oldest first. */
  timeline: TimelinePoint[];
}

export interface Environment {
  readonly memoryMb: number;
  /** Facts for config.json, e.g. { limitEnforced: true, mechanism: 'cgroup v1' } or { accel: 'tcg' }. */
  readonly facts: Record<string, unknown>;
  /** How much slower than native this environment runs (4 for a VM under TCG, else 1): the run scales its timeouts by it. */
  readonly timeoutFactor: number;
  /**
   * Starts the server on a fresh data folder and waits for GET / = 200; returns its base URL: on 127.0.0.1,
   * or the address of the local provider's network namespace for a server binary that binds every interface.
   * `server` replaces the launch's server for this start: an A/B run starts both refs' builds in one environment.
   */
  startServer(server?: ServerSpec): Promise<string>;
  /** Stops the server (SIGTERM, then SIGKILL); safe to call when it is not running. */
  stopServer(): Promise<void>;
  /** Whether the server process is still running. */
  serverAlive(): Promise<boolean>;
  /** The server's pid on this host (local provider), for CPU affinity; absent or null where it runs elsewhere. */
  serverPid?(): number | null;
  /** Whether the environment itself still runs (a VM's process; the host is always there). */
  environmentAlive(): Promise<boolean>;
  /**
   * Kernel OOM kills in this environment so far (a counter: an iteration compares two readings), so a kill
   * outside the sample (the server's start, the verification download) is named as one too.
   */
  oomKills(): Promise<number>;
  /** Kernel lines about the last `kills` OOM kills, for failures.log. */
  oomLines(kills: number): Promise<string[]>;
  startSampling(): Promise<void>;
  stopSampling(): Promise<MemorySample>;
  /**
   * The last lines of the latest server's stdout+stderr, for failures.log; `withoutReadinessPolls`
   * leaves out the access-log lines of GET / (a server that never got ready logs one per poll).
   */
  serverLogTail(lines: number, opts?: { withoutReadinessPolls?: boolean }): Promise<string>;
  /** Stops the server and destroys the environment; idempotent, never throws. */
  down(): Promise<void>;
}

export interface Provider {
  readonly name: 'local' | 'qemu' | 'vagrant';
  up(memoryMb: number): Promise<Environment>;
  /** What is still up, for "still cleaning up: waiting for ..." (e.g. "local 256 MB (server pid 123, cgroup ...)"). */
  waitingFor(): string[];
  /** Tears down every environment this provider brought up and has not yet seen go down; never throws. */
  close(): Promise<void>;
}

/** What every provider takes besides its own options: the run's interruption (a boot under way stops, and is not retried). */
export interface ProviderContext {
  signal?: AbortSignal;
  /** Where the provider's messages go (VM boots, warnings): the run's Progress line. */
  say: Say;
}
