// npm run bench: the suite's own costs, as ratios taken side by side in one
// run (absolute times drift on a shared machine), each against its target.
// Prints a table on stdout and writes JSON (bench/results/bench-<time>.json or --out).
//   npm run bench -- --quick          # smaller sizes, fewer samples: under two minutes
//   npm run bench -- --only curl,rss  # some figures only
// Exit: 0 every measured figure meets its target, 1 one does not (or the bench failed), 2 bad input.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Papa from 'papaparse';
import { $ } from 'zx';
import { InputError, runIfMain } from '../lib/errors.ts';
import { authenticate, deleteEntry } from '../lib/client.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { freePort, hostServerArgv, spawnServer, stopServerProcess, waitReady } from '../lib/providers/server.ts';
import type { Provider } from '../lib/providers/provider.ts';
import { QemuProvider } from '../lib/providers/qemu.ts';
import { cachedStandinBundle } from '../lib/standin/standin-bundle.ts';
import { SELF_CHECK, SELF_CHECK_ARGS, standinPair } from '../lib/self-check.ts';
import { VagrantProvider } from '../lib/providers/vagrant.ts';
import { cvPct, median } from '../lib/stats/stats.ts';
import { ensureTestFile, sha256File, writeTestFile } from '../lib/testfiles.ts';
import { formatBytes, MiB } from '../lib/units.ts';
import { overheadSplit, renderTable, verdict, type Figure, type Timing } from './figures.ts';

const HELP = `Usage: npm run bench -- [options]

Measures the suite's own costs against targets, side by side in one run:
  curl       client throughput vs curl -F to a loopback sink (interleaved)   >= 0.90 of curl
  rss        client peak RSS uploading a big file; growth from a 100 MiB one  <= 150 MiB; <= 10 MiB
  gen        test file generation vs dd if=/dev/urandom bs=1M                  >= 5x faster
  run        a local-provider run-tests against the stand-in: harness overhead
             (wall - uploads - verification downloads) / wall, and the
             throughput CV over its iterations, warm-up excluded                <= 10%; <= 5%
             beside floors under that CV, reported: curl to one stand-in (no
             suite code); sha256sum of the file, the stand-in's writes by dd,
             and sha256sum pinned to each vCPU in turn (no project code)
  vm         VM boot to ready, qemu vs vagrant at 256 MB                      qemu >= 2x faster
  verdict    time to verdict: wall time of an interleaved, adaptive run of the stand-in
             against itself slowed by 10% until it exits with 'slower' (median), reported

Options:
  --quick        smaller files and fewer samples (under two minutes); the VM figure is skipped
  --only LIST    comma-separated figures to measure (default: all)
  --out FILE     JSON output (default: bench/results/bench-<YYYYMMDD-HHMMSS>.json)
  -h, --help     this help

Full: curl 1 GiB x 5 each; rss 100 MiB and 5 GiB; gen 1 GiB x 5 each; run 1 GiB x 11
iterations (1 warm-up) at 4096 MB. Quick: 128 MiB x 3; 100 MiB and 1 GiB; 512 MiB x 3;
64 MiB x 11 at 1024 MB. Each figure notes the machine's load average (2 cores shared?).
`;

const FIGURES = ['curl', 'rss', 'gen', 'run', 'vm', 'verdict'] as const;
type FigureName = (typeof FIGURES)[number];

interface Settings {
  curl: { bytes: number; samples: number };
  rss: { smallBytes: number; bigBytes: number };
  gen: { bytes: number; samples: number };
  run: { size: string; bytes: number; iterations: number; memoryMb: number };
  vm: { memoryMb: number } | null;
  /** Interleaved runs until 'slower', of the self-check's case. */
  verdict: { runs: number };
}

const FULL: Settings = {
  curl: { bytes: 1024 * MiB, samples: 5 },
  rss: { smallBytes: 100 * MiB, bigBytes: 5 * 1024 * MiB },
  gen: { bytes: 1024 * MiB, samples: 5 },
  // 4096 MB: room for the stand-in's 2 GiB of spool and store, so the CV is the
  // harness's and the machine's, not the server's reclaim under its limit (at
  // 2048 MB its processing CV read 13-22% against 5.5-6.3% here).
  run: { size: '1GiB', bytes: 1024 * MiB, iterations: 11, memoryMb: 4096 },
  vm: { memoryMb: 256 },
  verdict: { runs: 5 },
};
const QUICK: Settings = {
  curl: { bytes: 128 * MiB, samples: 3 },
  rss: { smallBytes: 100 * MiB, bigBytes: 1024 * MiB },
  gen: { bytes: 512 * MiB, samples: 3 },
  run: { size: '64MiB', bytes: 64 * MiB, iterations: 11, memoryMb: 1024 },
  vm: null,
  verdict: { runs: 2 },
};

const TSX_LOADER = path.join(SUITE_DIR, 'node_modules', 'tsx', 'dist', 'loader.mjs');
const BENCH_DIR = path.join(SUITE_DIR, 'bench');
const NEVER = '2999-12-31T00:00:00Z';

const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');
const mibs = (bytes: number, seconds: number) => bytes / MiB / seconds;
/** Wall seconds of `job`. */
const timed = async (job: () => Promise<unknown>) => { const t0 = performance.now(); await job(); return (performance.now() - t0) / 1000; };
/** Seconds as the details print them: [0.21 0.19 ...]. */
const secs = (xs: number[]) => `[${xs.map((x) => x.toFixed(2)).join(' ')}]`;

/**
 * CPU seconds used by this process's finished children (cutime + cstime of
 * /proc/self/stat, in 1/100 s): what a child like dd or curl cost, which a
 * loaded machine inflates far less than wall time.
 */
function childrenCpuSeconds(): number {
  const fields = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}
const perGiB = (cpuSeconds: number, bytes: number) => (cpuSeconds / (bytes / 1024 / MiB)).toFixed(2);
const ownCpuSeconds = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };

/** The sink in a process of its own; resolves once it listens. */
async function startSink(secret: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, path.join(BENCH_DIR, 'sink.mts')], {
    env: { ...process.env, PS_SHARED_SECRET: secret, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`sink exited before listening (code ${code})`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

interface ClientUpload { seconds: number; cpuSeconds: number; peakRssBytes: number }

/** One upload by the suite's client (bench/upload-once.mts), in a process of its own, as run-tests runs it (under tsx). */
async function clientUpload(url: string, secret: string, file: string): Promise<ClientUpload> {
  const r = await $({ quiet: true })`${process.execPath} --import ${TSX_LOADER} ${path.join(BENCH_DIR, 'upload-once.mts')} ${url} ${secret} ${file}`;
  const j = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { status: number; durationSeconds: number; cpuSeconds: number; peakRssBytes: number; error: string | null };
  if (j.status !== 200) throw new Error(`client upload failed: HTTP ${j.status} ${j.error ?? ''}`);
  return { seconds: j.durationSeconds, cpuSeconds: j.cpuSeconds, peakRssBytes: j.peakRssBytes };
}

/** One upload by curl -F; its own request timer (time_total), like the client's durationSeconds, its CPU seconds and the entry id. */
async function curlUpload(url: string, file: string, cookie = 'sharedSecret=bench-sink'): Promise<{ seconds: number; cpuSeconds: number; id: string }> {
  const cpu0 = childrenCpuSeconds();
  const target = `${url}/api/entry?expiration=${encodeURIComponent(NEVER)}`;
  const r = await $({ quiet: true })`curl -sS -w ${'\n%{http_code} %{time_total}'} -H ${`Cookie: ${cookie}`} -F ${`file=@${file}`} ${target}`;
  const lines = r.stdout.trim().split('\n');
  const [code, seconds] = lines.at(-1)!.split(' ');
  if (code !== '200') throw new Error(`curl upload failed: HTTP ${code} ${lines.slice(0, -1).join(' ').slice(0, 200)}`);
  const id = (JSON.parse(lines.slice(0, -1).join('\n') || '{}') as { id?: string }).id ?? '';
  return { seconds: Number(seconds), cpuSeconds: childrenCpuSeconds() - cpu0, id };
}

/**
 * Seconds for each of `times` uploads of `file` by curl to one stand-in
 * process (the same bundle the run starts), each entry deleted after: the
 * stand-in and this machine with no suite code in the path (no harness, no
 * fresh server, no cgroup). The CV of these is the floor under the run's CV figure.
 */
async function standinWithCurl(file: string, dir: string, times: number): Promise<number[]> {
  const secret = crypto.randomBytes(12).toString('hex');
  const tmp = path.join(dir, 'floor-tmp');
  fs.mkdirSync(tmp, { recursive: true });
  const port = await freePort();
  const argv = [...hostServerArgv({ kind: 'standin', binaryPath: await cachedStandinBundle(), env: {} }), '-db', path.join(dir, 'floor-data', 'store.db')];
  const proc = spawnServer(argv, { PATH: process.env.PATH ?? '/usr/bin:/bin', PS_SHARED_SECRET: secret, PORT: String(port), TMPDIR: tmp }, path.join(dir, 'floor.log'));
  try {
    const url = `http://127.0.0.1:${port}`;
    await waitReady(url, proc, 60_000);
    const cookie = await authenticate(url, secret);
    const seconds: number[] = [];
    for (let i = 0; i < times; i++) {
      const u = await curlUpload(url, file, cookie);
      seconds.push(u.seconds);
      await deleteEntry(url, cookie, u.id);
    }
    return seconds;
  } finally {
    await stopServerProcess(proc);
  }
}

/**
 * Fixed jobs with no code of this project, in turn, `times` rounds: `cpu`,
 * sha256sum of `file` hot in the page cache (CPU and memory copies only);
 * `copy`, the stand-in's disk writes done by dd (the file to a spool in 64 KiB
 * writes, the spool to a store in 320 KiB ones, both removed), 2x the file's
 * size of fresh page cache; `vcpu`, sha256sum of the hot `probe` pinned
 * (taskset) to each CPU in turn, seconds per CPU: a host can run one vCPU of
 * this VM slower than the other, and the scheduler here cannot see it. Their
 * spread is how steady this machine itself is, the floor under any wall-time
 * CV of an upload measured here.
 */
async function machineJobSeconds(file: string, probe: string, dir: string, times: number): Promise<{ cpu: number[]; copy: number[]; vcpu: number[][] }> {
  const spool = path.join(dir, 'floor-spool');
  const store = path.join(dir, 'floor-store');
  const cpus = os.cpus().length;
  const out = { cpu: [] as number[], copy: [] as number[], vcpu: [] as number[][] };
  for (let i = 0; i < times; i++) {
    out.cpu.push(await timed(() => $({ quiet: true })`sha256sum ${file}`));
    out.copy.push(await timed(async () => {
      await $({ quiet: true })`dd if=${file} of=${spool} bs=64K status=none`;
      await $({ quiet: true })`dd if=${spool} of=${store} bs=320K status=none`;
      fs.rmSync(spool);
      fs.rmSync(store);
    }));
    const round: number[] = [];
    // Each round starts on the next CPU, so no CPU always goes first.
    for (let k = 0; k < cpus; k++) {
      const c = (i + k) % cpus;
      round[c] = await timed(() => $({ quiet: true })`taskset -c ${c} sha256sum ${probe}`);
    }
    out.vcpu.push(round);
  }
  return out;
}

async function figureCurl(s: Settings['curl'], sinkUrl: string, secret: string): Promise<Figure[]> {
  const file = (await ensureTestFile(s.bytes)).path;
  const client: number[] = [];
  const curl: number[] = [];
  const cpu = { client: [] as number[], curl: [] as number[] };
  for (let i = 0; i < s.samples; i++) {
    // Alternating who goes first cancels a drift in the machine's load.
    const pair = [
      async () => { const u = await clientUpload(sinkUrl, secret, file); client.push(mibs(s.bytes, u.seconds)); cpu.client.push(u.cpuSeconds); },
      async () => { const u = await curlUpload(sinkUrl, file); curl.push(mibs(s.bytes, u.seconds)); cpu.curl.push(u.cpuSeconds); },
    ];
    for (const f of i % 2 ? pair.reverse() : pair) await f();
    log(`curl: ${i + 1}/${s.samples}: client ${client.at(-1)!.toFixed(0)} MiB/s, curl ${curl.at(-1)!.toFixed(0)} MiB/s (load ${load()})`);
  }
  return [{
    key: 'client_vs_curl', name: `client throughput vs curl, ${formatBytes(s.bytes)}`, value: median(client) / median(curl), unit: 'x',
    target: { op: '>=', value: 0.9 },
    detail: `median of ${s.samples} each, interleaved: client ${median(client).toFixed(0)} MiB/s [${client.map((x) => x.toFixed(0)).join(' ')}], ` +
      `curl ${median(curl).toFixed(0)} MiB/s [${curl.map((x) => x.toFixed(0)).join(' ')}]; CPU seconds per GiB: ` +
      `client ${perGiB(median(cpu.client), s.bytes)}, curl ${perGiB(median(cpu.curl), s.bytes)}; curl's own CV ${cvPct(curl).toFixed(1)}% ` +
      `(the machine's noise floor for the CV figure); load ${load()}`,
  }];
}

async function figureRss(s: Settings['rss'], sinkUrl: string, secret: string): Promise<Figure[]> {
  const small = await ensureTestFile(s.smallBytes);
  const big = await ensureTestFile(s.bigBytes);
  const a = await clientUpload(sinkUrl, secret, small.path);
  const b = await clientUpload(sinkUrl, secret, big.path);
  const detail = `VmHWM of bench/upload-once.mts under tsx (as run-tests runs the client): ${formatBytes(s.smallBytes)} ` +
    `${(a.peakRssBytes / MiB).toFixed(0)} MiB, ${formatBytes(s.bigBytes)} ${(b.peakRssBytes / MiB).toFixed(0)} MiB ` +
    `(${mibs(s.bigBytes, b.seconds).toFixed(0)} MiB/s); load ${load()}`;
  return [
    { key: 'client_peak_rss', name: `client peak RSS, ${formatBytes(s.bigBytes)}`, value: b.peakRssBytes / MiB, unit: 'MiB', target: { op: '<=', value: 150 }, detail },
    {
      key: 'client_rss_growth', name: `client RSS growth, ${formatBytes(s.smallBytes)} -> ${formatBytes(s.bigBytes)}`,
      value: (b.peakRssBytes - a.peakRssBytes) / MiB, unit: 'MiB', target: { op: '<=', value: 10 },
    },
  ];
}

async function figureGen(s: Settings['gen']): Promise<Figure[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-bench-gen-'));
  const suite: number[] = [];
  const dd: number[] = [];
  const zeros: number[] = [];
  const hash: number[] = [];
  const cpu = { suite: [] as number[], dd: [] as number[] };
  const ddSeconds = (input: string) => timed(async () => {
    const out = path.join(dir, 'dd.bin');
    await $({ quiet: true })`dd if=${input} of=${out} bs=1M count=${s.bytes / MiB} status=none`;
    fs.rmSync(out);
  });
  const runSuite = async () => {
    const file = path.join(dir, 'suite.bin');
    const cpu0 = ownCpuSeconds();
    suite.push(await timed(() => writeTestFile(file, s.bytes)));
    cpu.suite.push(ownCpuSeconds() - cpu0);
    // Not part of generation: the check every run makes of a cached file, reported beside it.
    hash.push(await timed(() => sha256File(file)));
    fs.rmSync(file);
  };
  const runDd = async () => {
    const cpu0 = childrenCpuSeconds();
    dd.push(await ddSeconds('/dev/urandom'));
    cpu.dd.push(childrenCpuSeconds() - cpu0);
  };
  // The floor under any generator: the same writes with no bytes to make. Run
  // right before each of the two, it also hands both the same warm page cache:
  // on this VM memory left free for 2 s goes back to the host (free page
  // reporting), and a writer that finds it there pays up to 1.3 s per GiB more.
  const runZeros = async () => { zeros.push(await ddSeconds('/dev/zero')); };
  try {
    // One warm-up round, not kept.
    for (let i = -1; i < s.samples; i++) {
      for (const run of i % 2 ? [runZeros, runSuite, runZeros, runDd] : [runZeros, runDd, runZeros, runSuite]) await run();
      log(`gen: ${i < 0 ? 'warm-up' : `${i + 1}/${s.samples}`}: suite ${suite.at(-1)!.toFixed(2)} s, dd ${dd.at(-1)!.toFixed(2)} s, ` +
        `zeros ${zeros.slice(-2).map((x) => x.toFixed(2)).join(' ')} s (load ${load()})`);
      if (i < 0) for (const xs of [suite, dd, zeros, hash, cpu.suite, cpu.dd]) xs.length = 0;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return [{
    key: 'testfile_generation', name: `test file generation vs dd, ${formatBytes(s.bytes)}`, value: median(dd) / median(suite), unit: 'x faster',
    target: { op: '>=', value: 5 },
    detail: `median of ${s.samples} each after a warm-up round, interleaved, each right after the zeros below: suite (lib/testfiles.ts writeTestFile) ${median(suite).toFixed(2)} s ${secs(suite)}, ` +
      `dd ${median(dd).toFixed(2)} s ${secs(dd)}; CPU seconds per GiB: suite ${perGiB(median(cpu.suite), s.bytes)}, ` +
      `dd ${perGiB(median(cpu.dd), s.bytes)}; bound: dd if=/dev/zero, the same writes with nothing to generate, ` +
      `${median(zeros).toFixed(2)} s ${secs(zeros)}, so no generator can be more than ${(median(dd) / median(zeros)).toFixed(1)}x faster ` +
      `than this dd here; then the sha256 of the written file (every run's check of a cached file; kept out of generation) ` +
      `${median(hash).toFixed(2)} s; load ${load()}`,
  }];
}

/** A real run-tests process on the local provider against the stand-in, its requests timed from inside. */
async function figureRun(s: Settings['run']): Promise<Figure[]> {
  // generated once into the cache: a first run's generation is not the steady state measured here
  const testFile = (await ensureTestFile(s.bytes)).path;
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-bench-run-'));
  const timingsFile = path.join(out, 'timings.json');
  try {
    // An untouched stand-in: no fault knobs from this shell.
    const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('STANDIN_')));
    Object.assign(env, { UPS_BENCH_TIMINGS: timingsFile, PS_SHARED_SECRET: crypto.randomBytes(12).toString('hex') });
    const t0 = performance.now();
    const r = await $({ quiet: true, nothrow: true, env })`${process.execPath} --import ${TSX_LOADER} --import ${path.join(BENCH_DIR, 'request-timing.mts')} ${path.join(SUITE_DIR, 'run-tests.mts')} --provider local --sizes ${s.size} --memory ${s.memoryMb} --iterations ${s.iterations} --out ${out}`;
    const wall = (performance.now() - t0) / 1000;
    if (r.exitCode !== 0) throw new Error(`run-tests exited ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
    const dir = r.stdout.trim().split('\n').at(-1)!;
    const rows = Papa.parse<Record<string, string>>(fs.readFileSync(path.join(dir, 'raw.csv'), 'utf8'), { header: true, skipEmptyLines: true }).data;
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { matrix: { warmup_iterations: number } };
    const failed = rows.filter((x) => x.exit_reason !== 'success');
    if (failed.length) throw new Error(`run-tests: ${failed.length} iteration(s) failed: ${failed[0].exit_reason} ${failed[0].error}`);
    const measured = rows.filter((x) => Number(x.iteration) > config.matrix.warmup_iterations);
    const tput = measured.map((x) => Number(x.throughput_mib_s));
    // The floor under the CV: the same uploads with no suite code in the path, one warm-up not kept.
    const floor = (await standinWithCurl(testFile, out, measured.length + 1)).slice(1).map((x) => mibs(s.bytes, x));
    // Under both: the machine alone, as many rounds of two fixed jobs (the test file is hot in the page cache now).
    const probeBytes = Math.min(s.bytes, 256 * MiB);
    const probe = (await ensureTestFile(probeBytes)).path;
    await $({ quiet: true })`cat ${probe}`; // hot in the page cache: the probe times CPUs, not the disk
    const jobs = await machineJobSeconds(testFile, probe, out, measured.length + 1);
    const [cpuJob, copyJob, vcpuJob] = [jobs.cpu.slice(1), jobs.copy.slice(1), jobs.vcpu.slice(1)];
    const machineCv = Math.max(cvPct(cpuJob), cvPct(copyJob));
    const spreads = vcpuJob.map((r) => Math.max(...r) / Math.min(...r));
    const maxSpread = Math.max(...spreads);
    const samples = (xs: number[]) => `median ${median(xs).toFixed(2)} s ${secs(xs)}`;
    // Which phase the noise is in: the transfer (client, loopback, CPU) or the server's processing (its disk writes).
    const phaseCv = (col: string) => `${col.replace('_seconds', '')} median ${median(measured.map((x) => Number(x[col]))).toFixed(2)} s, CV ${cvPct(measured.map((x) => Number(x[col]))).toFixed(1)}%`;
    const { timings } = JSON.parse(fs.readFileSync(timingsFile, 'utf8')) as { timings: Timing[] };
    const split = overheadSplit(wall, timings);
    const outside = wall - (split.seconds.upload ?? 0) - (split.seconds.verify ?? 0);
    const ms = (x = 0) => `${((x / split.uploads) * 1000).toFixed(0)}`;
    const parts = Object.entries(split.seconds).filter(([k]) => k !== 'upload' && k !== 'verify')
      .sort((a, b) => b[1] - a[1]).map(([k, x]) => `${k} ${ms(x)}`).join(', ');
    return [
      {
        key: 'harness_overhead', name: `harness overhead, run of ${s.iterations} x ${s.size}`, value: split.overheadPct, unit: '%',
        target: { op: '<=', value: 10 },
        detail: `wall ${wall.toFixed(1)} s = uploads ${(split.seconds.upload ?? 0).toFixed(1)} s + verification ${(split.seconds.verify ?? 0).toFixed(1)} s ` +
          `+ outside ${outside.toFixed(1)} s; outside, in ms per iteration: ${parts}; load ${load()}`,
      },
      {
        key: 'throughput_cv', name: `throughput CV, ${tput.length} iterations of ${s.size} (${s.memoryMb} MB)`, value: cvPct(tput), unit: '%', samples: tput,
        target: { op: '<=', value: 5 },
        detail: `stand-in on local, warm-up excluded: median ${median(tput).toFixed(0)} MiB/s [${tput.map((x) => x.toFixed(0)).join(' ')}]; ` +
          `${phaseCv('transfer_seconds')}; ${phaseCv('processing_seconds')}; host CPU pressure [${measured.map((x) => x.host_cpu_pressure_pct).join(' ')}]%` +
          (machineCv > 5 ? `; a fixed job with no project code varies ${machineCv.toFixed(1)}% on this machine (below), more than this target itself` : '') +
          (maxSpread > 1.1 ? `; the same job ran up to ${maxSpread.toFixed(2)}x slower on one vCPU than on another in one round (below)` : ''),
      },
      {
        key: 'standin_curl_cv', name: `throughput CV without the suite, curl to one stand-in, ${floor.length} x ${s.size} (floor)`, value: cvPct(floor), unit: '%', target: null, samples: floor,
        detail: `after the run: curl -F to a stand-in started once, each entry deleted, no cgroup, warm-up excluded: ` +
          `median ${median(floor).toFixed(0)} MiB/s [${floor.map((x) => x.toFixed(0)).join(' ')}]; the noise of the server and this machine ` +
          `alone, under the CV above; load ${load()}`,
      },
      {
        key: 'machine_cpu_cv', name: `CV without any project code: sha256sum of the hot ${s.size} file, ${cpuJob.length} x (floor)`, value: cvPct(cpuJob), unit: '%', target: null, samples: cpuJob,
        detail: `the same CPU-only job each time, in turn with the copy below: ${samples(cpuJob)}; load ${load()}`,
      },
      {
        key: 'machine_copy_cv', name: `CV without any project code: the stand-in's writes by dd, 2 x ${s.size}, ${copyJob.length} x (floor)`, value: cvPct(copyJob), unit: '%', target: null, samples: copyJob,
        detail: `dd of the file to a spool in 64 KiB writes, then to a store in 320 KiB ones, both removed (fresh page cache, as each upload ` +
          `needs): ${samples(copyJob)}; with the line above, how much wall time varies on this machine for reasons outside any program; load ${load()}`,
      },
      {
        key: 'machine_vcpu_spread', name: `slowest vs fastest vCPU, one job without project code on each in one round, ${spreads.length} x (floor)`,
        value: maxSpread, unit: 'x', target: null, samples: spreads,
        detail: `sha256sum of a hot ${formatBytes(probeBytes)} file pinned (taskset) to each vCPU in turn, in turn with the jobs above; ` +
          `slowest / fastest per round [${spreads.map((x) => x.toFixed(2)).join(' ')}]; ` +
          os.cpus().map((_, c) => `cpu${c} ${samples(vcpuJob.map((r) => r[c]))}`).join(', ') +
          `; a CPU-bound job's time depends on which vCPU runs it, which no program here chooses; load ${load()}`,
      },
    ];
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/** Seconds from provider.up() to the stand-in answering in the guest, then torn down. */
async function bootToReady(provider: Provider, memoryMb: number): Promise<number> {
  const t0 = performance.now();
  const env = await provider.up(memoryMb);
  try {
    await env.startServer();
    return (performance.now() - t0) / 1000;
  } finally {
    await env.down();
  }
}

async function figureVm(s: Settings['vm']): Promise<Figure[]> {
  const base = { key: 'vm_boot_ratio', name: 'VM boot to ready, vagrant / qemu at 256 MB', value: null, unit: 'x', target: { op: '>=', value: 2 } } as const;
  if (s === null) return [{ ...base, note: 'skipped in --quick: each boot takes 20-50 s under TCG (minutes on a busy host), beyond the quick budget' }];
  const launch = { server: { kind: 'standin' as const, binaryPath: await cachedStandinBundle(), env: {} }, secret: crypto.randomBytes(12).toString('hex'), readinessTimeoutSeconds: 300 };
  const quiet = (line: string) => log(`  ${line}`);
  const qemuProvider = new QemuProvider(launch, { cpus: 1, say: quiet });
  const vagrantProvider = new VagrantProvider(launch, { cpus: 1, say: quiet });
  try {
    const qemu = await bootToReady(qemuProvider, s.memoryMb);
    log(`vm: qemu ${qemu.toFixed(1)} s (load ${load()})`);
    const vagrant = await bootToReady(vagrantProvider, s.memoryMb);
    log(`vm: vagrant ${vagrant.toFixed(1)} s (load ${load()})`);
    return [
      { key: 'vm_boot_qemu', name: `VM boot to ready, qemu at ${s.memoryMb} MB`, value: qemu, unit: 's', target: null },
      { key: 'vm_boot_vagrant', name: `VM boot to ready, vagrant at ${s.memoryMb} MB`, value: vagrant, unit: 's', target: null },
      {
        ...base, value: vagrant / qemu,
        detail: `provider.up() + the stand-in answering in the guest, one boot each (qemu first), same guest image; load ${load()}`,
      },
    ];
  } catch (e) {
    await qemuProvider.close();
    await vagrantProvider.close();
    return [{ ...base, note: `boot failed: ${(e as Error).message.split('\n')[0]}` }];
  }
}

/**
 * Time to verdict: how long an interleaved run of the stand-in against itself slowed by 10% takes to
 * exit with 'slower' (adaptive rounds: it stops once decided), beside the noise floors above.
 */
async function figureVerdict(s: Settings['verdict']): Promise<Figure[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-bench-verdict-'));
  try {
    const { a, b } = await standinPair(dir, SELF_CHECK.slowdownPct);
    const walls: number[] = [];
    const outcomes: string[] = [];
    for (let i = 0; i < s.runs; i++) {
      const t0 = performance.now();
      const r = await $({ nothrow: true, quiet: true })`${path.join(SUITE_DIR, 'run-tests')} --binary ${a} --binary ${b} ${SELF_CHECK_ARGS(dir)}`;
      walls.push((performance.now() - t0) / 1000);
      const parent = r.stdout.trim().split('\n').at(-1) ?? '';
      const cmp = JSON.parse(fs.readFileSync(path.join(parent, 'compare', 'compare.json'), 'utf8')) as { cases: { verdict: string; rounds: number | null }[] };
      outcomes.push(`${cmp.cases[0].verdict} after ${cmp.cases[0].rounds} rounds (exit ${r.exitCode})`);
      log(`verdict: ${outcomes.at(-1)} in ${walls.at(-1)!.toFixed(1)} s (load ${load()})`);
    }
    return [{
      key: 'time_to_verdict', name: `time to verdict, stand-in vs ${SELF_CHECK.slowdownPct}% slower, ${SELF_CHECK.size} at ${SELF_CHECK.memoryMb} MB, median of ${s.runs}`,
      value: median(walls), unit: 's', target: null, samples: walls,
      detail: `interleaved, adaptive (./run-tests --binary A --binary B): ${outcomes.join('; ')}; walls ${secs(walls)}; load ${load()}`,
    }];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function main(argv: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({ args: argv, options: { quick: { type: 'boolean' }, only: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }).values;
  } catch (e) {
    throw new InputError((e as Error).message.split('\n')[0]);
  }
  if (v.help) { process.stdout.write(HELP); return 0; }
  const only = v.only === undefined ? [...FIGURES] : v.only.split(',').map((x) => x.trim());
  const unknown = only.filter((x) => !(FIGURES as readonly string[]).includes(x));
  if (unknown.length) throw new InputError(`--only: unknown figure ${unknown.join(', ')} (one of ${FIGURES.join(', ')})`);
  const s = v.quick ? QUICK : FULL;
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const outFile = path.resolve(v.out ?? path.join(BENCH_DIR, 'results', `bench-${stamp}.json`));
  fs.mkdirSync(path.dirname(outFile), { recursive: true });

  const started = new Date().toISOString();
  const figures: Figure[] = [];
  const write = () => fs.writeFileSync(outFile, `${JSON.stringify({
    schema: 1, quick: Boolean(v.quick), started_at: started, ended_at: new Date().toISOString(), settings: s,
    host: { cores: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? 'unknown', load_average: os.loadavg() },
    figures: figures.map((f) => ({ ...f, verdict: verdict(f) })),
  }, null, 2)}\n`);

  const secret = crypto.randomBytes(12).toString('hex');
  const sink = only.includes('curl') || only.includes('rss') ? await startSink(secret) : null;
  const steps: Record<FigureName, () => Promise<Figure[]>> = {
    curl: () => figureCurl(s.curl, sink!.url, secret),
    rss: () => figureRss(s.rss, sink!.url, secret),
    gen: () => figureGen(s.gen),
    run: () => figureRun(s.run),
    vm: () => figureVm(s.vm),
    verdict: () => figureVerdict(s.verdict),
  };
  log(`${v.quick ? 'quick' : 'full'} bench, load average ${load()} on ${os.cpus().length} cores`);
  try {
    for (const name of FIGURES) {
      if (!only.includes(name)) continue;
      log(`${name} ...`);
      figures.push(...(await steps[name]()));
      write(); // after every figure, so a later failure loses nothing
    }
  } finally {
    sink?.child.kill('SIGTERM');
  }
  process.stdout.write(renderTable(figures));
  process.stdout.write(`\n${outFile}\n`);
  return figures.some((f) => verdict(f) === 'FAIL') ? 1 : 0;
}

runIfMain(import.meta.url, main);
