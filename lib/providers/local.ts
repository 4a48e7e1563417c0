// The local provider: the server as a host process inside a memory cgroup with
// the case's limit. Seconds to start; records whether the limit was enforced,
// and runs unlimited (saying so loudly) where no cgroup can be made. A server
// binary (PicoShare binds every interface) runs in a network namespace of its
// own (lib/providers/netns.ts); the stand-in binds 127.0.0.1 itself.
import { $ } from 'zx';
import fs from 'node:fs';
import path from 'node:path';
import { createMemoryCgroup, isCgroup, sweepOrphanCgroups, type MemoryCgroup } from './cgroup.ts';
import { createServerNetns, sweepOrphanNetns, type ServerNetns } from './netns.ts';
import { localDataParent } from '../paths.ts';
import { pidAlive } from '../pids.ts';
import { diesWithSuite } from './reaper.ts';
import type { Environment, MemorySample, Provider, ProviderContext, ServerLaunch, ServerSpec, TimelinePoint } from './provider.ts';
import type { Say } from '../progress.ts';
import { CLK_TCK, diskUsageBytes, readProcSpend, spendBetween, type ProcSpend } from './spend.ts';
import {
  freePort, hostServerArgv, logTail, portInUse, spawnServer, stopServerProcess, waitReady, type ServerProcess,
} from './server.ts';

/** Data folders (ups-local-PID-*) of runs whose process is gone: a run killed with SIGKILL cannot remove its own. */
function sweepOrphanDataDirs(): string[] {
  const parent = localDataParent();
  let names: string[];
  try { names = fs.readdirSync(parent); } catch { return []; }
  return names.filter((n) => {
    const pid = Number(/^ups-local-(\d+)-/.exec(n)?.[1] ?? NaN);
    return Number.isInteger(pid) && !pidAlive(pid);
  }).map((n) => {
    const dir = path.join(parent, n);
    fs.rmSync(dir, { recursive: true, force: true });
    return dir;
  });
}

/** How often a sample reads the server's VmHWM (and the cgroup's usage where its peak cannot be reset). */
const SAMPLE_INTERVAL_MS = 250;

export class LocalProvider implements Provider {
  readonly name = 'local' as const;
  /** Every environment up and not yet down, for close() and waitingFor(). */
  private readonly live = new Set<LocalEnvironment>();
  private readonly warn: Say;

  constructor(private launch: ServerLaunch, ctx: ProviderContext) {
    this.warn = ctx.say;
  }

  waitingFor(): string[] {
    return [...this.live].map((e) => e.describe());
  }

  async close(): Promise<void> {
    await Promise.all([...this.live].map((e) => e.down()));
  }

  async up(memoryMb: number): Promise<Environment> {
    for (const dir of sweepOrphanCgroups('upload-perf-suite-')) this.warn(`removed ${dir}, left by a run that was killed (its servers stopped)`);
    for (const dir of sweepOrphanDataDirs()) this.warn(`removed ${dir}, left by a run that was killed`);
    const name = `upload-perf-suite-${process.pid}-${memoryMb}`;
    const cg = createMemoryCgroup(name, memoryMb * 1024 * 1024);
    let facts: Record<string, unknown>;
    if (isCgroup(cg)) {
      facts = {
        limitEnforced: true, mechanism: `cgroup v${cg.version}`, cgroup: cg.dir, limitBytes: cg.limitBytes,
        peak_memory: cg.resetPeak() ? 'the cgroup peak, reset per iteration' : `the cgroup usage polled every ${SAMPLE_INTERVAL_MS} ms (this kernel cannot reset the cgroup peak)`,
      };
    } else {
      this.warn(`WARNING: memory limit ${memoryMb} MB NOT ENFORCED: no memory cgroup could be made (${cg.error}). ` +
        'The server runs unlimited; run as root on a host with the cgroup memory controller to enforce it.');
      facts = { limitEnforced: false, mechanism: 'none', reason: cg.error };
    }
    let netns: ServerNetns | null = null;
    if (this.launch.server.kind === 'binary' && process.env.UPS_LOCAL_NETNS === 'off') {
      facts.network = 'host (UPS_LOCAL_NETNS=off)';
    } else if (this.launch.server.kind === 'binary') {
      for (const n of await sweepOrphanNetns()) this.warn(`removed network namespace ${n}, left by a run that was killed`);
      const ns = await createServerNetns();
      if ('error' in ns) {
        this.warn(`WARNING: the server binary runs on the host, where a server that binds every interface (as PicoShare does) ` +
          `is reachable from other machines while the run lasts: no network namespace could be made (${ns.error}).`);
        facts.network = `host (no network namespace: ${ns.error})`;
      } else {
        netns = ns;
        facts.network = `network namespace ${ns.name}, server at ${ns.serverAddress}`;
      }
    }
    try {
      const env = new LocalEnvironment(memoryMb, this.launch, isCgroup(cg) ? cg : null, netns, facts, () => this.live.delete(env));
      this.live.add(env);
      return env;
    } catch (e) { // its data folder could not be made: nothing else may outlive this
      if (isCgroup(cg)) cg.remove();
      await netns?.remove();
      throw e;
    }
  }
}

class LocalEnvironment implements Environment {
  // The pid in the name lets a later run remove what a killed one left.
  private readonly workDir = fs.mkdtempSync(path.join(localDataParent(), `ups-local-${process.pid}-`));
  private readonly logFile = path.join(this.workDir, 'server.log');
  private proc: ServerProcess | null = null;
  private dataDir: string | null = null;
  private sampling: {
    timer: NodeJS.Timeout; hwm: number | null; oomBefore: number; polledPeak: number | null;
    startedAt: number; spendBefore: ProcSpend | null; spendLast: ProcSpend | null; timeline: TimelinePoint[];
  } | null = null;

  constructor(
    readonly memoryMb: number,
    private launch: ServerLaunch,
    private cgroup: MemoryCgroup | null,
    private netns: ServerNetns | null,
    readonly facts: Record<string, unknown>,
    private onDown: () => void,
  ) {}

  readonly timeoutFactor = 1;

  async startServer(server: ServerSpec = this.launch.server): Promise<string> {
    await this.stopServer();
    this.dataDir = fs.mkdtempSync(path.join(this.workDir, 'data-'));
    const tmp = path.join(this.dataDir, 'tmp'); // the upload spool: on disk beside the data, never a tmpfs
    fs.mkdirSync(tmp);
    const netns = server.kind === 'binary' ? this.netns : null;
    // In its own namespace every port is free. On the host the port is free when chosen, but another
    // process may take it before the server binds: then another port.
    for (let attempt = 1; ; attempt++) {
      const port = netns ? netns.serverPort : await freePort();
      try {
        return await this.launchOn(port, server, tmp, netns);
      } catch (e) {
        const taken = !netns && this.proc?.exit && (await portInUse(port));
        if (!taken) throw e;
        if (attempt === 3) throw new Error(`${(e as Error).message}; port ${port} on 127.0.0.1 is in use by another process`);
        fs.appendFileSync(this.logFile, `--- port ${port} was taken by another process before the server bound it: trying another\n`);
        await this.stopProcess();
      }
    }
  }

  private async stopProcess(): Promise<void> {
    if (this.proc) await stopServerProcess(this.proc);
    this.proc = null;
  }

  private async launchOn(port: number, server: ServerSpec, tmp: string, netns: ServerNetns | null): Promise<string> {
    const dataDir = this.dataDir!;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/',
      ...server.env,
      PS_SHARED_SECRET: this.launch.secret,
      PORT: String(port),
      TMPDIR: tmp,
    };
    const serverArgv = [...hostServerArgv(server), '-db', path.join(dataDir, 'store.db')];
    const argvInNet = netns ? netns.wrap(serverArgv) : serverArgv;
    // The server joins the cgroup before it execs, so it never allocates outside the limit.
    // setpriv first (lib/providers/reaper.ts): every exec after it keeps the pid, so the server dies with the suite.
    const argv = diesWithSuite(this.cgroup
      ? ['/bin/sh', '-c', 'echo $$ > "$0" && exec "$@"', this.cgroup.procsFile, ...argvInNet]
      : argvInNet);
    fs.appendFileSync(this.logFile, `--- server start ${new Date().toISOString()} port ${port}\n`);
    this.proc = spawnServer(argv, env, this.logFile, server.workDir);
    const url = `http://${netns ? netns.serverAddress : '127.0.0.1'}:${port}`;
    await waitReady(url, this.proc, this.launch.readinessTimeoutSeconds * 1000);
    return url;
  }

  async stopServer(): Promise<void> {
    await this.stopProcess();
    if (this.dataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
    this.dataDir = null;
  }

  async serverAlive(): Promise<boolean> {
    return this.proc !== null && this.proc.exit === null;
  }

  async environmentAlive(): Promise<boolean> {
    return true;
  }

  serverPid(): number | null {
    return this.proc && this.proc.exit === null ? this.proc.pid : null;
  }

  private readHwm(): number | null {
    if (!this.proc || this.proc.exit) return null;
    try {
      const status = fs.readFileSync(`/proc/${this.proc.pid}/status`, 'utf8');
      const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
      return kb ? Number(kb) * 1024 : null;
    } catch {
      return null;
    }
  }

  async oomKills(): Promise<number> {
    return this.cgroup?.readOomKills() ?? 0;
  }

  async oomLines(kills: number): Promise<string[]> {
    return kernelOomLinesOfLast(kills);
  }

  private readRss(): number | null {
    if (!this.proc || this.proc.exit) return null;
    try {
      const kb = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${this.proc.pid}/status`, 'utf8'))?.[1];
      return kb ? Number(kb) * 1024 : null;
    } catch {
      return null;
    }
  }

  private readSpend(): ProcSpend | null {
    return this.proc && !this.proc.exit ? readProcSpend(this.proc.pid) : null;
  }

  async startSampling(): Promise<void> {
    // Where the kernel cannot reset the cgroup's peak (cgroup v2 before Linux 6.12), its usage is
    // polled instead: the peak since creation would give every smaller case the largest one's.
    const cg = this.cgroup;
    const polled = cg !== null && !cg.resetPeak();
    // VmHWM and the server's counters are polled, not only read at the end: a server that dies takes its /proc entry with it.
    const spendBefore = this.readSpend();
    const s = {
      timer: undefined as unknown as NodeJS.Timeout, hwm: this.readHwm(), oomBefore: cg?.readOomKills() ?? 0,
      polledPeak: polled ? cg.readCurrent() ?? 0 : null,
      startedAt: performance.now(), spendBefore, spendLast: spendBefore, timeline: [] as TimelinePoint[],
    };
    const sample = () => {
      const current = cg?.readCurrent() ?? null;
      s.hwm = this.readHwm() ?? s.hwm;
      s.spendLast = this.readSpend() ?? s.spendLast;
      if (s.polledPeak !== null) s.polledPeak = Math.max(s.polledPeak, current ?? 0);
      s.timeline.push({
        t: (performance.now() - s.startedAt) / 1000, envMemoryBytes: current, serverRssBytes: this.readRss(),
        dataDirBytes: this.dataDir ? diskUsageBytes(this.dataDir) : null,
      });
    };
    sample();
    s.timer = setInterval(sample, SAMPLE_INTERVAL_MS);
    this.sampling = s;
  }

  async stopSampling(): Promise<MemorySample> {
    const s = this.sampling;
    this.sampling = null;
    if (!s) throw new Error('stopSampling without startSampling');
    clearInterval(s.timer);
    const hwm = this.readHwm() ?? s.hwm;
    const oomKills = (this.cgroup?.readOomKills() ?? 0) - s.oomBefore;
    return {
      spend: {
        ...spendBetween(s.spendBefore, this.readSpend() ?? s.spendLast, CLK_TCK),
        dataDirBytes: this.dataDir ? diskUsageBytes(this.dataDir) : null,
      },
      timeline: s.timeline,
      peakMemoryBytes: s.polledPeak !== null ? Math.max(s.polledPeak, this.cgroup!.readCurrent() ?? 0) : this.cgroup?.readPeak() ?? null,
      serverPeakRssBytes: hwm,
      oomKills,
      oomLines: oomKills > 0 ? await kernelOomLinesOfLast(oomKills) : [],
    };
  }

  async serverLogTail(lines: number, opts: { withoutReadinessPolls?: boolean } = {}): Promise<string> {
    return logTail(this.logFile, lines, this.launch.secret, opts);
  }

  describe(): string {
    const server = this.proc && !this.proc.exit ? `server pid ${this.proc.pid}` : 'no server';
    return `local ${this.memoryMb} MB (${server}${this.cgroup ? `, cgroup ${this.cgroup.dir}` : ''}${this.netns ? `, network namespace ${this.netns.name}` : ''})`;
  }

  async down(): Promise<void> {
    if (this.sampling) clearInterval(this.sampling.timer);
    this.sampling = null;
    await this.stopServer().catch(() => {});
    this.cgroup?.remove();
    await this.netns?.remove();
    fs.rmSync(this.workDir, { recursive: true, force: true });
    this.onDown();
  }
}

async function dmesgLines(): Promise<string[] | null> {
  const r = await $({ nothrow: true, quiet: true })`dmesg`;
  return r.exitCode === 0 ? r.stdout.split('\n').filter(Boolean) : null;
}

/**
 * Kernel lines about the last `kills` OOM kills (each report starts with "invoked oom-killer").
 * The cgroup's counter says how many happened during the sample, so dmesg is read only then:
 * a dmesg spawn before every upload cost 30-200 ms per iteration (bench/).
 */
async function kernelOomLinesOfLast(kills: number): Promise<string[]> {
  const lines = await dmesgLines();
  if (!lines) return ['(kernel log not readable: dmesg failed)'];
  const oom = lines.filter((l) => /out of memory|oom|killed process/i.test(l));
  const starts = oom.flatMap((l, i) => (/invoked oom-killer/i.test(l) ? [i] : []));
  return oom.slice(starts.length >= kills ? starts[starts.length - kills] : 0);
}
