// The guest layer both VM providers share: everything that happens inside a
// booted VM, over plain ssh (one multiplexed connection, the suite's key).
// It copies the server in, starts it detached on a fresh data folder, probes
// it from the host through the forwarded port, samples memory and disk inside
// the guest, reads OOM kills from the guest's dmesg, and tells whether the
// server died. A provider boots the VM, then:
//
//   const env = await openGuest({ memoryMb, facts, ssh: { port, keyFile }, httpPort, launch,
//     timeoutFactor, workDir, destroy: () => killTheVm() })
//
// Commands run one small guest script (GUEST_SCRIPT, copied in once) whose
// arguments are fixed words and paths, so no host string is ever parsed by
// the guest's shell; the server's environment (with the secret) goes in on
// ssh's stdin into a mode-600 file, never on a command line.
import { $, fs, path, type ProcessOutput } from 'zx';
import os from 'node:os';
import { probeRoot } from '../client.ts';
import type { Environment, MemorySample, ServerLaunch, ServerSpec, TimelinePoint } from './provider.ts';
import { CLK_TCK, parseProcIo, parseProcStat, spendBetween, type ProcSpend, type ServerSpend } from './spend.ts';
import { describeExit, exitedBeforeReady, notReadyWithin, serverOutput } from './server.ts';
import { bundleStandin } from '../standin/standin-bundle.ts';

/** The server's port inside the guest; the provider forwards a free host port to it. */
export const GUEST_SERVER_PORT = 4001;
const ROOT = '/srv/ups';

export interface SshTarget {
  /** Host port on 127.0.0.1 forwarded to the guest's port 22. */
  port: number;
  /** Private key accepted by the guest's root account. */
  keyFile: string;
  host?: string;
  user?: string;
}

export interface GuestOptions {
  memoryMb: number;
  facts: Record<string, unknown>;
  ssh: SshTarget;
  /** Host port on 127.0.0.1 forwarded to GUEST_SERVER_PORT. */
  httpPort: number;
  launch: ServerLaunch;
  /** Multiplies every timeout (software emulation is several times slower). */
  timeoutFactor: number;
  /** Host folder of this VM's own files (ssh control socket, the stand-in bundle); removed by the provider. */
  workDir: string;
  /** Destroys the VM; called once by down(). */
  destroy: () => Promise<void>;
}

/**
 * The kernel's thrashing guard (MGLRU min_ttl_ms), switched on in every guest:
 * without it a node server that fills a 256 MB guest slowly keeps evicting its
 * own code pages and the guest livelocks for many minutes (seen here: 15 min,
 * even ssh timed out) instead of OOM-killing. With 300 ms the kernel kills when
 * it can't keep the last 300 ms' working set; a hog was killed at 134 MB
 * anon-rss instead of 146 MB without the guard (96 MB with 1000 ms).
 */
export const THRASH_GUARD_MS = 300;

// One script, one case per job, run as `sh /srv/ups/guest.sh JOB ARGS`.
// The sampler is its perl tail (perl-base is in every Debian): it reads /proc and sums
// the data and temp folders without forking, since a fork costs 100+ ms under
// TCG; it shields itself from the OOM killer to outlive the server it watches.
export const GUEST_SCRIPT = String.raw`#!/bin/sh
# upload-perf-suite guest helper (copied in by lib/providers/guest.ts)
# UPS_GUEST_ROOT: another root, for running this script on a host in tests
R=/srv/ups
[ -n "$UPS_GUEST_ROOT" ] && R=$UPS_GUEST_ROOT
job=$1; shift
stop_server() {
  group=$(cat $R/run/group.pid 2>/dev/null) || return 0
  pid=$(cat $R/run/server.pid 2>/dev/null || echo $group)
  kill -TERM -$group 2>/dev/null
  i=0
  while kill -0 $pid 2>/dev/null && [ $i -lt $1 ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL -$group 2>/dev/null
  rm -f $R/run/server.pid $R/run/group.pid
}
case $job in
prepare) # prepare GUARD_MS: folders, and the kernel's thrashing guard when it has one
  mkdir -p $R/bin
  if [ -w /sys/kernel/mm/lru_gen/min_ttl_ms ] && echo y > /sys/kernel/mm/lru_gen/enabled && echo $1 > /sys/kernel/mm/lru_gen/min_ttl_ms; then
    echo "thrash_guard_ms=$(cat /sys/kernel/mm/lru_gen/min_ttl_ms)"
  fi
  ;;
unpack) # unpack TARFILE DIR: a server's working tree, copied in as one tar
  rm -rf $2 && mkdir -p $2 && tar -xf $1 -C $2 && rm -f $1
  ;;
start) # start DIR PROGRAM... ; DIR is the server's working directory ("-": its run folder); env as KEY=VALUE lines on stdin
  stop_server 50
  rm -rf $R/run
  mkdir -p $R/run/data $R/run/tmp
  (umask 077; cat > $R/run/env)
  echo "--- server start $(date -u +%FT%TZ)" >> $R/server.log
  dir=$1; shift
  [ "$dir" = - ] && dir=$R/run
  cd $dir || exit 3
  # A shell leads the server's process group (stop kills the group) and keeps its exit status in run/exit;
  # the server's own pid, in run/server.pid, is what the sampler and "alive" watch.
  setsid nohup sh -c 'while IFS= read -r l; do export "$l"; done < "$0/env"; rm -f "$0/env"
    "$@" & echo $! > "$0/server.pid.new"; mv "$0/server.pid.new" "$0/server.pid"; wait $!; echo $? > "$0/exit"' $R/run "$@" -db $R/run/data/store.db < /dev/null >> $R/server.log 2>&1 &
  echo $! > $R/run/group.pid
  i=0
  while [ ! -f $R/run/server.pid ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
  ;;
stop) # stop GRACE_TENTHS
  stop_server $1
  rm -rf $R/run
  ;;
alive) # "alive", or "exited STATUS" (128+N: killed by signal N), or "dead"
  pid=$(cat $R/run/server.pid 2>/dev/null) && kill -0 $pid 2>/dev/null && echo alive && exit
  i=0
  while [ ! -f $R/run/exit ] && [ -f $R/run/server.pid ] && [ $i -lt 10 ]; do sleep 0.05; i=$((i+1)); done
  [ -f $R/run/exit ] && echo "exited $(cat $R/run/exit)" || echo dead
  ;;
sample-start)
  kill $(cat $R/sampler.pid 2>/dev/null) 2>/dev/null
  rm -f $R/samples
  dmesg | tail -n 1 | awk '{ print substr($0, 2, index($0, "]") - 2) + 0 }' > $R/dmesg-mark
  pid=$(cat $R/run/server.pid 2>/dev/null || echo 0)
  # The server's counters now, and the uptime the timeline counts from (lib/providers/spend.ts reads them)
  { echo "clk_tck $(getconf CLK_TCK 2>/dev/null || echo 100)"; echo "uptime $(cat /proc/uptime)"; cat /proc/$pid/stat /proc/$pid/io 2>/dev/null; } > $R/spend-start
  setsid nohup perl -x $R/guest.sh sampler $pid $R < /dev/null > /dev/null 2>&1 &
  echo $! > $R/sampler.pid
  ;;
sample-stop) # prints the samples, the server's counters at start and now, the data folder's kB, kernel lines newer than the mark
  kill $(cat $R/sampler.pid 2>/dev/null) 2>/dev/null
  rm -f $R/sampler.pid
  pid=$(cat $R/run/server.pid 2>/dev/null || echo 0)
  cat $R/samples 2>/dev/null
  echo '--- spend-start'
  cat $R/spend-start 2>/dev/null
  echo '--- spend-end'
  cat /proc/$pid/stat /proc/$pid/io /proc/$pid/status 2>/dev/null
  echo '--- disk'
  du -sk $R/run/data $R/run/tmp 2>/dev/null
  echo '--- dmesg'
  dmesg | awk -v mark="$(cat $R/dmesg-mark 2>/dev/null)" '{ t = substr($0, 2, index($0, "]") - 2) + 0; if (mark == "" || t > mark + 0) print }'
  ;;
log-tail) # log-tail LINES
  tail -n $1 $R/server.log 2>/dev/null
  ;;
*)
  echo "unknown job $job" >&2
  exit 2
  ;;
esac
exit
: <<'PERL'
#!perl
# perl guest.sh sampler PID ROOT: one line per 250 ms to ROOT/samples:
# uptime, MemTotal-MemAvailable kB, VmRSS kB, VmHWM kB (- once the process is gone), data+tmp kB,
# then the server's user and system CPU ticks (children waited for included) and write_bytes (- once gone)
my ($pid, $root) = ($ARGV[1], $ARGV[2] // '/srv/ups');
if (open(my $adj, '>', '/proc/self/oom_score_adj')) { print $adj "-1000\n"; close $adj; }
open(my $out, '>>', "$root/samples") or die "samples: $!";
select((select($out), $| = 1)[0]);
sub fields {
  my %v;
  open(my $f, '<', $_[0]) or return undef;
  while (<$f>) { $v{$1} = $2 if /^(\w+):\s+(\d+)/; }
  return \%v;
}
sub uptime { open(my $f, '<', '/proc/uptime') or return 0; my $l = <$f>; return (split(' ', $l))[0]; }
sub cpu {
  open(my $f, '<', "/proc/$pid/stat") or return ('-', '-');
  my $l = <$f>;
  my @f = split(' ', substr($l, rindex($l, ')') + 1));
  return ($f[11] + $f[13], $f[12] + $f[14]);
}
sub kb_used {
  my ($sum, @todo) = (0, @_);
  while (@todo) {
    my $p = shift @todo;
    my @st = lstat($p) or next;
    $sum += $st[12] * 512;
    if (-d _ and opendir(my $d, $p)) { push @todo, map { "$p/$_" } grep { $_ ne '.' and $_ ne '..' } readdir($d); }
  }
  return int($sum / 1024);
}
while (1) {
  my $t = uptime();
  my $m = fields('/proc/meminfo');
  my $s = fields("/proc/$pid/status") || {};
  my $io = fields("/proc/$pid/io") || {};
  printf $out "%s %d %s %s %d %s %s %s\n", $t, $m->{MemTotal} - $m->{MemAvailable}, $s->{VmRSS} // '-', $s->{VmHWM} // '-',
    kb_used("$root/run/data", "$root/run/tmp"), cpu(), $io->{write_bytes} // '-';
  my $left = 0.25 - (uptime() - $t);
  select(undef, undef, undef, $left > 0.05 ? $left : 0.05);
}
__END__
PERL
`;

export interface SampleSummary {
  peakMemoryBytes: number | null;
  serverPeakRssBytes: number | null;
  peakDiskBytes: number | null;
  samples: number;
}

/** Peaks from the sampler's lines ("uptime usedKiB rssKiB|- hwmKiB|- diskKiB"). */
export function summarizeSamples(text: string): SampleSummary {
  let mem: number | null = null;
  let rss: number | null = null;
  let disk: number | null = null;
  let samples = 0;
  const max = (a: number | null, b: number) => (a === null || b > a ? b : a);
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !/^\d/.test(f[0])) continue;
    samples++;
    mem = max(mem, Number(f[1]) * 1024);
    // VmHWM is the process's own high-water mark: it catches a spike between two samples.
    for (const v of [f[2], f[3]]) if (/^\d+$/.test(v)) rss = max(rss, Number(v) * 1024);
    disk = max(disk, Number(f[4]) * 1024);
  }
  return { peakMemoryBytes: mem, serverPeakRssBytes: rss, peakDiskBytes: disk, samples };
}

/** The sections of sample-stop's output. Pure. */
export function splitSampleStop(stdout: string): { samples: string; spendStart: string; spendEnd: string; disk: string; dmesg: string[] } {
  const parts = new Map<string, string>();
  const chunks = `\n${stdout}`.split(/\n--- (spend-start|spend-end|disk|dmesg)\n/);
  parts.set('samples', chunks[0]);
  for (let i = 1; i + 1 < chunks.length; i += 2) parts.set(chunks[i], chunks[i + 1]);
  const get = (k: string) => parts.get(k) ?? '';
  return { samples: get('samples'), spendStart: get('spend-start'), spendEnd: get('spend-end'), disk: get('disk'), dmesg: get('dmesg').split('\n').filter(Boolean) };
}

/** The server's VmHWM in bytes from sample-stop's spend-end section (its /proc/PID/status), or null once it is gone. Pure. */
export function hwmAtStop(spendEnd: string): number | null {
  const kib = /^VmHWM:\s+(\d+) kB/m.exec(spendEnd)?.[1];
  return kib === undefined ? null : Number(kib) * 1024;
}

/** A guest's counters as printed by cat /proc/PID/stat /proc/PID/io (lib/providers/spend.ts reads the same files on the host). */
function procSpendOf(text: string): ProcSpend | null {
  const statLine = text.split('\n').find((l) => /^\d+ \(/.test(l));
  const stat = statLine ? parseProcStat(statLine) : null;
  return stat ? { ...stat, writeBytes: parseProcIo(text) } : null;
}

/** The last sampler line's counters (for a server gone before sample-stop read its /proc). */
function lastSampledSpend(samples: string): ProcSpend | null {
  for (const line of samples.trim().split('\n').reverse()) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && /^\d+$/.test(f[5]) && /^\d+$/.test(f[6])) {
      return { userTicks: Number(f[5]), systemTicks: Number(f[6]), writeBytes: /^\d+$/.test(f[7]) ? Number(f[7]) : null };
    }
  }
  return null;
}

/** What the server spent and the timeline, from sample-stop's output. Pure. */
export function guestSpend(stdout: string): { spend: ServerSpend; timeline: TimelinePoint[] } {
  const p = splitSampleStop(stdout);
  const clk = Number(/^clk_tck (\d+)/m.exec(p.spendStart)?.[1] ?? CLK_TCK);
  const u0 = Number(/^uptime ([\d.]+)/m.exec(p.spendStart)?.[1] ?? NaN);
  const diskKb = p.disk.split('\n').map((l) => Number(l.trim().split(/\s+/)[0])).filter((n) => Number.isFinite(n) && n >= 0);
  const spend = {
    ...spendBetween(procSpendOf(p.spendStart), procSpendOf(p.spendEnd) ?? lastSampledSpend(p.samples), clk),
    dataDirBytes: diskKb.length > 0 ? diskKb.reduce((a, b) => a + b, 0) * 1024 : null,
  };
  const timeline: TimelinePoint[] = [];
  for (const line of p.samples.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !/^\d/.test(f[0]) || !Number.isFinite(u0)) continue;
    const kib = (v: string) => (/^\d+$/.test(v) ? Number(v) * 1024 : null);
    timeline.push({ t: Number(f[0]) - u0, envMemoryBytes: kib(f[1]), serverRssBytes: kib(f[2]), dataDirBytes: kib(f[4]) });
  }
  return { spend, timeline };
}
/** The kernel's OOM-kill lines among new dmesg lines, and how many processes it killed. */
export function oomFromDmesg(lines: string[]): { oomKills: number; oomLines: string[] } {
  const oomLines = lines.filter((l) => /out of memory|oom-kill|oom_reaper|killed process/i.test(l));
  return { oomKills: oomLines.filter((l) => /killed process/i.test(l)).length, oomLines };
}

/** KEY=VALUE lines the guest script exports; a value with a newline can't be carried that way. */
export function envFileText(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || /[\n\r\0]/.test(v)) throw new Error(`cannot pass env ${k} to the guest server`);
    return `${k}=${v}\n`;
  }).join('');
}

/** A multiplexed ssh connection to a guest: the first command opens it, the rest reuse it. */
export class Ssh {
  constructor(private target: SshTarget, private controlPath: string) {}

  options(connectTimeoutSeconds = 10): string[] {
    return [
      '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'LogLevel=ERROR', '-o', `ConnectTimeout=${connectTimeoutSeconds}`, '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=12',
      '-o', 'ControlMaster=auto', '-o', `ControlPath=${this.controlPath}`, '-o', 'ControlPersist=300',
      '-o', 'IdentitiesOnly=yes', '-i', this.target.keyFile,
    ];
  }

  private get dest(): string {
    return `${this.target.user ?? 'root'}@${this.target.host ?? '127.0.0.1'}`;
  }

  /** Runs `words` in the guest; words must be plain (letters, digits, / . _ -): the guest's shell reads them. */
  async run(words: (string | number)[], opts: { input?: string; timeoutMs: number; nothrow?: boolean }): Promise<ProcessOutput> {
    for (const w of words) if (!/^[\w./=-]+$/.test(String(w))) throw new Error(`not a plain word for the guest shell: ${w}`);
    const once = () => $({ quiet: true, nothrow: true, input: opts.input ?? '', timeout: opts.timeoutMs })`ssh ${this.options()} -p ${this.target.port} ${this.dest} ${words.map(String)}`;
    let r = await once();
    // 255 is ssh's own failure (no connection): a guest busy reclaiming memory can miss a handshake.
    for (let i = 0; i < 2 && r.exitCode === 255; i++) {
      await new Promise((res) => setTimeout(res, 2000));
      r = await once();
    }
    if (r.exitCode !== 0 && !opts.nothrow) throw new Error(`guest command ${words.join(' ')} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
    return r;
  }

  async copy(local: string, remote: string, timeoutMs: number): Promise<void> {
    await $({ quiet: true, timeout: timeoutMs })`scp -q ${this.options()} -P ${this.target.port} ${local} ${`${this.dest}:${remote}`}`;
  }

  /**
   * Polls until a command succeeds; `stillBooting` false (the VM died) stops early.
   * Until the guest's NIC is up, QEMU's user network accepts a connection and
   * holds it: that attempt hangs until its ConnectTimeout even after sshd
   * listens, which cost boots up to 10 s (measured: sshd ready at 21 s, the
   * attempt begun at 12 s failed at 22 s). So attempts get 2 s until the guest
   * first answers (a reset: its NIC is up), then the full 10 s that a slow sshd
   * may need. Attempts don't overlap: five handshakes at once held a TCG
   * guest's one vCPU for 8 s.
   */
  async waitUntilUp(timeoutMs: number, stillBooting: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    let guestAnswered = false;
    for (let attempt = 1; Date.now() < deadline; attempt++) {
      // After 20 short attempts, the long timeout anyway: a guest may answer only once sshd does.
      const connectTimeoutSeconds = guestAnswered || attempt > 20 ? 10 : 2;
      const r = await $({ quiet: true, nothrow: true, timeout: 20_000 })`ssh ${this.options(connectTimeoutSeconds)} -p ${this.target.port} ${this.dest} true`;
      if (r.exitCode === 0) return;
      last = r.stderr.trim();
      if (/reset|closed/i.test(last)) guestAnswered = true;
      if (!(await stillBooting())) throw new Error(`VM exited before ssh came up (${last})`);
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`ssh to the guest not up within ${Math.round(timeoutMs / 1000)} s (last: ${last || 'no answer'})`);
  }

  async close(): Promise<void> {
    await $({ quiet: true, nothrow: true, timeout: 5000 })`ssh ${this.options()} -p ${this.target.port} -O exit ${this.dest}`;
  }
}

/** Waits for ssh, installs the guest script, and returns the Environment; the provider adds only boot and destroy. */
export async function openGuest(opts: GuestOptions, stillBooting: () => Promise<boolean>, bootTimeoutMs: number): Promise<GuestEnvironment> {
  const ssh = new Ssh(opts.ssh, path.join(opts.workDir, 'ssh-control'));
  await ssh.waitUntilUp(bootTimeoutMs, stillBooting);
  await ssh.run(['install', '-D', '-m', '755', '/dev/stdin', `${ROOT}/guest.sh`], { input: GUEST_SCRIPT, timeoutMs: 30_000 * opts.timeoutFactor });
  const prepared = await ssh.run(['sh', `${ROOT}/guest.sh`, 'prepare', THRASH_GUARD_MS], { timeoutMs: 30_000 * opts.timeoutFactor });
  opts.facts.thrash_guard_ms = Number(/thrash_guard_ms=(\d+)/.exec(prepared.stdout)?.[1] ?? 0);
  return new GuestEnvironment(opts, ssh, stillBooting);
}

export class GuestEnvironment implements Environment {
  readonly memoryMb: number;
  readonly facts: Record<string, unknown>;
  readonly timeoutFactor: number;
  /** Every sample's summary, oldest first (an iteration samples its upload, then its verification), with the peak disk use of the server's data + temp folders. */
  readonly summaries: SampleSummary[] = [];
  private installed = new Map<string, { argv: string[]; cwd: string }>();
  private down_ = false;

  /** `vmAlive`: whether the VM's process still runs, so a VM killed from outside is named as such, not as an ssh error. */
  constructor(private opts: GuestOptions, readonly ssh: Ssh, private vmAlive: () => Promise<boolean> = async () => true) {
    this.memoryMb = opts.memoryMb;
    this.facts = opts.facts;
    this.timeoutFactor = opts.timeoutFactor;
  }

  private ms(seconds: number): number {
    return seconds * 1000 * this.opts.timeoutFactor;
  }

  private job(words: (string | number)[], opts: { input?: string; seconds?: number; nothrow?: boolean } = {}) {
    return this.ssh.run(['sh', `${ROOT}/guest.sh`, ...words], { input: opts.input, timeoutMs: this.ms(opts.seconds ?? 30), nothrow: opts.nothrow });
  }

  /** The guest argv that runs `server` and its working directory, copying both in the first time. */
  private async program(server: ServerSpec): Promise<{ argv: string[]; cwd: string }> {
    const key = `${server.kind === 'standin' ? 'standin' : server.binaryPath ?? ''}\0${server.workDir ?? ''}`;
    const known = this.installed.get(key);
    if (known) return known;
    const n = this.installed.size + 1;
    let argv: string[];
    if (server.kind === 'standin') {
      // Bundled for the guest's Debian nodejs (18), since its node_modules and tsx are not in the guest.
      const bundle = await bundleStandin(path.join(this.opts.workDir, 'standin.mjs'));
      await this.ssh.copy(bundle, `${ROOT}/bin/standin.mjs`, this.ms(60));
      argv = ['node', `${ROOT}/bin/standin.mjs`];
    } else {
      if (!server.binaryPath) throw new Error('server binary path missing');
      const remote = `${ROOT}/bin/server-${n}`;
      await this.ssh.copy(server.binaryPath, remote, this.ms(120));
      argv = [remote];
    }
    let cwd = '-';
    if (server.workDir) {
      // The whole tree (without .git, see refs.ts) as one tar: one scp instead of one per file.
      const tar = path.join(this.opts.workDir, `tree-${n}.tar`);
      await $({ quiet: true })`tar -cf ${tar} --exclude=./.git -C ${server.workDir} .`;
      await this.ssh.copy(tar, `${ROOT}/bin/tree-${n}.tar`, this.ms(120));
      await fs.rm(tar, { force: true });
      cwd = `${ROOT}/tree-${n}`;
      await this.job(['unpack', `${ROOT}/bin/tree-${n}.tar`, cwd], { seconds: 120 });
    }
    const installed = { argv, cwd };
    this.installed.set(key, installed);
    return installed;
  }

  async startServer(server: ServerSpec = this.opts.launch.server): Promise<string> {
    const { argv, cwd } = await this.program(server);
    const env: Record<string, string> = {
      ...server.env,
      PS_SHARED_SECRET: this.opts.launch.secret,
      PORT: String(GUEST_SERVER_PORT),
      TMPDIR: `${ROOT}/run/tmp`,
    };
    if (server.kind === 'standin') env.STANDIN_HOST = '0.0.0.0';
    try {
      await this.job(['start', cwd, ...argv], { input: envFileText(env) });
    } catch (e) {
      if (!(await this.vmAlive())) throw new Error(`the VM is gone (its process exited): ${(e as Error).message}`);
      throw e;
    }
    const url = `http://127.0.0.1:${this.opts.httpPort}`;
    const timeoutMs = this.ms(this.opts.launch.readinessTimeoutSeconds);
    const deadline = Date.now() + timeoutMs;
    let nextAliveCheck = Date.now() + 2000;
    let last = 'GET / never answered';
    while (Date.now() < deadline) {
      const r = await probeRoot(url);
      if (r.ready) return url;
      // Through QEMU's port forward a server not (yet) listening is a connection reset, not a refusal.
      last = r.answer.replace(/^GET \/ failed: (ECONNRESET|UND_ERR_SOCKET)$/, 'GET / connection refused');
      if (Date.now() >= nextAliveCheck) {
        const state = await this.serverState();
        if (state !== 'alive') throw exitedBeforeReady(state);
        nextAliveCheck = Date.now() + 2000;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw notReadyWithin(timeoutMs, last);
  }

  async stopServer(): Promise<void> {
    await this.job(['stop', 50], { seconds: 30, nothrow: true });
  }

  async environmentAlive(): Promise<boolean> {
    return this.vmAlive();
  }

  async serverAlive(): Promise<boolean> {
    return (await this.serverState()) === 'alive';
  }

  /** "alive", or how the server ended, e.g. "the process exited with code 1". */
  private async serverState(): Promise<string> {
    const out = (await this.job(['alive'], { nothrow: true })).stdout.trim();
    const status = /^exited (\d+)$/.exec(out);
    if (out === 'alive') return 'alive';
    if (!status) return 'the process is gone (its exit status is unknown)';
    // The shell's convention: 128+N is death by signal N.
    const n = Number(status[1]);
    return n > 128 ? describeExit(null, signalName(n - 128)) : describeExit(n, null);
  }

  /** OOM kills in the guest's kernel log: one VM per memory limit, so its whole log is this environment's. */
  private async dmesgOom(): Promise<{ oomKills: number; oomLines: string[] }> {
    const r = await this.ssh.run(['dmesg'], { timeoutMs: this.ms(30), nothrow: true });
    return oomFromDmesg(r.stdout.split('\n').filter(Boolean));
  }

  async oomKills(): Promise<number> {
    return (await this.dmesgOom()).oomKills;
  }

  async oomLines(kills: number): Promise<string[]> {
    const lines = (await this.dmesgOom()).oomLines;
    const starts = lines.flatMap((l, i) => (/invoked oom-killer/i.test(l) ? [i] : []));
    return lines.slice(starts.length >= kills ? starts[starts.length - kills] : 0);
  }

  async startSampling(): Promise<void> {
    await this.job(['sample-start']);
  }

  async stopSampling(): Promise<MemorySample> {
    // A guest just through an OOM kill can be slow to answer: one retry.
    let r = await this.job(['sample-stop'], { seconds: 60, nothrow: true });
    if (r.exitCode !== 0) r = await this.job(['sample-stop'], { seconds: 60, nothrow: true });
    if (r.exitCode !== 0) throw new Error(`reading the guest's samples failed: ${r.stderr.trim()}`);
    const parts = splitSampleStop(r.stdout);
    const s = summarizeSamples(parts.samples);
    // VmHWM read at the stop as well: a window shorter than the sampler's start-up (a quick verification under TCG) has no line.
    const hwm = hwmAtStop(parts.spendEnd);
    if (hwm !== null) s.serverPeakRssBytes = Math.max(s.serverPeakRssBytes ?? 0, hwm);
    this.summaries.push(s);
    return {
      peakMemoryBytes: s.peakMemoryBytes, serverPeakRssBytes: s.serverPeakRssBytes, ...oomFromDmesg(parts.dmesg), ...guestSpend(r.stdout),
    };
  }

  async serverLogTail(lines: number, opts: { withoutReadinessPolls?: boolean } = {}): Promise<string> {
    // Polls every 250 ms: a TCG guest's readiness timeout (240 s) logs about a thousand.
    const r = await this.job(['log-tail', opts.withoutReadinessPolls ? 20_000 : lines], { nothrow: true });
    return serverOutput(r.stdout, lines, this.opts.launch.secret, opts);
  }

  async down(): Promise<void> {
    if (this.down_) return;
    this.down_ = true;
    await this.ssh.close().catch(() => {});
    await this.opts.destroy().catch(() => {});
  }
}

/** "SIGKILL" for 9, or "signal N" for a number with no name here. */
function signalName(n: number): string {
  return Object.entries(os.constants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
}
