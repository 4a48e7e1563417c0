// Every exit_reason produced for real: the stand-in's fault knobs, run under the
// local provider in a real memory cgroup (the OOM case is a real kernel OOM
// kill), through the same runIteration the suite uses. Also: nothing is left
// running or mounted after an environment goes down.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { $, quote } from 'zx';
import { runIteration } from '../lib/iteration.ts';
import { LocalProvider } from '../lib/providers/local.ts';
import type { ServerSpec } from '../lib/providers/provider.ts';
import { hostServerArgv } from '../lib/providers/server.ts';
import { ensureTestFile } from '../lib/testfiles.ts';
import { MiB } from '../lib/units.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { cgroupsOf, machineCanMakeMemoryCgroups } from './run-helpers.mts';
import { needs } from './skips.mts';

const SECRET = 'local-test-secret-Zq8';

async function one(opts: { server?: ServerSpec; standinEnv?: Record<string, string>; memoryMb?: number; sizeMiB?: number; uploadTimeoutSeconds?: number; readinessTimeoutSeconds?: number }) {
  const server = opts.server ?? { kind: 'standin', env: opts.standinEnv ?? {} };
  const provider = new LocalProvider({ server, secret: SECRET, readinessTimeoutSeconds: opts.readinessTimeoutSeconds ?? 30 }, { say: () => {} });
  const env = await provider.up(opts.memoryMb ?? 512);
  const sizeMiB = opts.sizeMiB ?? 8;
  const file = await ensureTestFile(sizeMiB * MiB);
  try {
    const outcome = await runIteration({
      env, file, secret: SECRET, uploadTimeoutSeconds: opts.uploadTimeoutSeconds ?? 60, authTimeoutSeconds: 30,
      testCase: { memoryMb: env.memoryMb, size: { label: `${sizeMiB}MiB`, bytes: file.bytes }, iteration: 1 },
    });
    return { ...outcome, facts: env.facts, cgroup: env.facts.cgroup as string | undefined };
  } finally {
    await env.down();
  }
}

test('success: sha256 verified, throughput and memory recorded', { timeout: 600_000 }, async () => {
  const o = await one({});
  assert.equal(o.row.exit_reason, 'success', o.row.error);
  assert.equal(o.row.http_status, 200);
  assert.equal(o.row.sha256_ok, true);
  assert.ok(o.row.throughput_mib_s! > 0);
  assert.ok(o.row.transfer_seconds! > 0 && o.row.transfer_seconds! <= o.row.duration_seconds);
  assert.ok(o.row.server_peak_rss_bytes! > 10 * MiB, `server RSS ${o.row.server_peak_rss_bytes}`);
  if (machineCanMakeMemoryCgroups()) {
    assert.equal(o.facts.limitEnforced, true, String(o.facts.reason));
    // The cgroup is charged the spool and the store (8 MiB each, in page cache) on top of the server's own memory.
    assert.ok(o.row.peak_memory_bytes! >= 16 * MiB && o.row.peak_memory_bytes! < 512 * MiB, `cgroup peak ${o.row.peak_memory_bytes}`);
  }
  assert.equal(o.failure, null);
});

test('memory: the RSS of a server holding a 128 MiB upload holds those bytes; the cgroup is charged what each server keeps', { timeout: 600_000 }, async () => {
  // 128 MiB, not 64: the spooling server's own peak varies by 10 MiB or more with garbage collection
  // (96-115 MiB measured), which 64 held MiB did not always clear by the half asked of it.
  const spooling = await one({ sizeMiB: 128, memoryMb: 1024 });
  const holding = await one({ sizeMiB: 128, memoryMb: 1024, standinEnv: { STANDIN_HOLD_IN_MEMORY: '1' } });
  for (const o of [spooling, holding]) assert.equal(o.row.exit_reason, 'success', o.row.error);
  // The spooling server's peak has transient garbage of its own, so at least half the held bytes must show, at most 2.5x.
  const rssRise = (holding.row.server_peak_rss_bytes! - spooling.row.server_peak_rss_bytes!) / MiB;
  assert.ok(holding.row.server_peak_rss_bytes! >= 128 * MiB + 30 * MiB && rssRise >= 64 && rssRise < 320,
    `server RSS ${spooling.row.server_peak_rss_bytes} spooling, ${holding.row.server_peak_rss_bytes} holding`);
  if (machineCanMakeMemoryCgroups()) {
    // Charged to the cgroup: the spooling server's spool and store in page cache, the holding server's 128 MiB of heap.
    assert.ok(spooling.row.peak_memory_bytes! >= 256 * MiB, `spooling: cgroup peak ${spooling.row.peak_memory_bytes}`);
    assert.ok(holding.row.peak_memory_bytes! >= 128 * MiB, `holding: cgroup peak ${holding.row.peak_memory_bytes}`);
  }
});

test('the cgroup peak is per iteration: a small upload after a big one reports its own; also where the kernel cannot reset it', { timeout: 600_000 }, async (t) => {
  if (!machineCanMakeMemoryCgroups()) return t.skip(needs('root', 'this machine cannot make memory cgroups'));
  const big = await ensureTestFile(64 * MiB);
  const small = await ensureTestFile(8 * MiB);
  // Polled: as on cgroup v2 before Linux 6.12, whose memory.peak can't be reset (simulated on this machine's real cgroup).
  for (const mode of ['kernel', 'polled'] as const) {
    const provider = new LocalProvider({ server: { kind: 'standin', env: {} }, secret: SECRET, readinessTimeoutSeconds: 30 }, { say: () => {} });
    const env = await provider.up(1024);
    try {
      assert.match(String(env.facts.peak_memory), /reset per iteration/);
      if (mode === 'polled') (env as unknown as { cgroup: { resetPeak: () => boolean } }).cgroup.resetPeak = () => false;
      const peaks: number[] = [];
      for (const [i, file] of [big, small].entries()) {
        const o = await runIteration({
          env, file, secret: SECRET, uploadTimeoutSeconds: 60, authTimeoutSeconds: 30,
          testCase: { memoryMb: 1024, size: { label: `${file.bytes / MiB}MiB`, bytes: file.bytes }, iteration: i + 1 },
        });
        assert.equal(o.row.exit_reason, 'success', o.row.error);
        peaks.push(o.row.peak_memory_bytes!);
      }
      t.diagnostic(`${mode}: peaks ${peaks.map((p) => (p / MiB).toFixed(1)).join(', ')} MiB`);
      // 64 MiB: spool and store in page cache, both in the kernel's peak; polling every 250 ms may miss the
      // moment both exist, but not the store, cached until the entry is deleted after sampling stops.
      // 8 MiB: its own 16 MiB plus the server, never the 128 MiB before it.
      assert.ok(peaks[0] >= (mode === 'kernel' ? 128 : 64) * MiB, `${mode}: 64 MiB upload peak ${peaks[0]}`);
      assert.ok(peaks[1] >= 16 * MiB && peaks[1] < 112 * MiB, `${mode}: 8 MiB upload after it, peak ${peaks[1]}`);
      // A server that spools 40 MiB over 2.5 s and then dies: its spool and memory are gone by the end of the
      // sample, so only the kernel's peak or a poll during the upload can have seen them.
      const crash = await runIteration({
        env, file: big, secret: SECRET, uploadTimeoutSeconds: 60, authTimeoutSeconds: 30,
        server: { kind: 'standin', env: { STANDIN_THROTTLE_MIBS: '16', STANDIN_CRASH_AFTER_BYTES: String(40 * MiB) } },
        testCase: { memoryMb: 1024, size: { label: '64MiB', bytes: big.bytes }, iteration: 3 },
      });
      t.diagnostic(`${mode}: server died after 40 MiB: peak ${(crash.row.peak_memory_bytes! / MiB).toFixed(1)} MiB`);
      assert.equal(crash.row.exit_reason, 'process_died', crash.row.error);
      // At least the spool of the last poll before the crash (36 MiB or more at 16 MiB/s) and the server's own
      // memory (40 MiB or more here): 64 MiB. The end of the sample alone read 37 MiB here.
      assert.ok(crash.row.peak_memory_bytes! >= 64 * MiB, `${mode}: peak ${crash.row.peak_memory_bytes} of a server that spooled 40 MiB`);
    } finally {
      await env.down();
    }
  }
});

test('http_error: the stand-in answers 500', { timeout: 600_000 }, async () => {
  const o = await one({ standinEnv: { STANDIN_STATUS: '500' } });
  assert.equal(o.row.exit_reason, 'http_error');
  assert.equal(o.row.http_status, 500);
  assert.match(o.row.error, /HTTP 500/);
  assert.match(o.failure!, /http_error/);
});

test('timeout: a processing phase longer than the upload timeout', { timeout: 600_000 }, async () => {
  const o = await one({ standinEnv: { STANDIN_PROCESSING_DELAY_MS: '8000' }, uploadTimeoutSeconds: 2 });
  assert.equal(o.row.exit_reason, 'timeout');
  assert.equal(o.row.http_status, null);
  // At the 2 s timeout (never before it), not when the server would have answered, 8 s in.
  assert.ok(o.row.duration_seconds >= 2 && o.row.duration_seconds < 7.5, `duration ${o.row.duration_seconds}`);
});

test('process_died: the server exits mid-upload', { timeout: 600_000 }, async () => {
  const o = await one({ standinEnv: { STANDIN_CRASH_AFTER_BYTES: String(2 * MiB) } });
  assert.equal(o.row.exit_reason, 'process_died');
  assert.match(o.failure!, /server log tail/);
  // The stand-in's own last words, not its start-up line (which names the knob too).
  assert.match(o.failure!, /crash knob: exiting with code 3 after \d+ upload body bytes/, 'the server log tail in failures.log says why it exited');
});

test('integrity_error: the stored bytes differ from the sent ones', { timeout: 600_000 }, async () => {
  const o = await one({ standinEnv: { STANDIN_CORRUPT_STORED: '1' } });
  assert.equal(o.row.exit_reason, 'integrity_error');
  assert.equal(o.row.sha256_ok, false);
  assert.equal(o.row.throughput_mib_s, null);
});

test('iteration_peak_rss_bytes covers the verification download: a server that reads the file into memory to serve it', { timeout: 600_000 }, async (t) => {
  const streaming = await one({ memoryMb: 1024, sizeMiB: 128 });
  const holding = await one({ memoryMb: 1024, sizeMiB: 128, standinEnv: { STANDIN_DOWNLOAD_IN_MEMORY: '1' } });
  const mib = (b: number | null) => (b === null ? 'null' : (b / MiB).toFixed(0));
  t.diagnostic(`streaming: upload ${mib(streaming.row.server_peak_rss_bytes)} MiB, iteration ${mib(streaming.row.iteration_peak_rss_bytes)} MiB; `
    + `download in memory: upload ${mib(holding.row.server_peak_rss_bytes)} MiB, iteration ${mib(holding.row.iteration_peak_rss_bytes)} MiB`);
  for (const o of [streaming, holding]) {
    assert.equal(o.row.exit_reason, 'success', o.row.error);
    assert.ok(o.row.iteration_peak_rss_bytes! >= o.row.server_peak_rss_bytes!, 'the whole iteration includes the upload');
  }
  // The upload's peaks are alike; only the download of the second holds the file's 128 MiB.
  assert.ok(holding.row.iteration_peak_rss_bytes! - holding.row.server_peak_rss_bytes! >= 64 * MiB,
    `the download's 128 MiB are in the iteration's peak (upload ${holding.row.server_peak_rss_bytes}, iteration ${holding.row.iteration_peak_rss_bytes})`);
  assert.ok(streaming.row.iteration_peak_rss_bytes! - streaming.row.server_peak_rss_bytes! < 32 * MiB,
    `a streamed download adds little (upload ${streaming.row.server_peak_rss_bytes}, iteration ${streaming.row.iteration_peak_rss_bytes})`);
});

test('not_ready: a server that never answers GET /', { timeout: 600_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-notready-'));
  const bin = path.join(dir, 'deaf-server');
  fs.writeFileSync(bin, '#!/bin/sh\nexec sleep 60\n', { mode: 0o755 });
  const o = await one({ server: { kind: 'binary', binaryPath: bin, env: {} }, readinessTimeoutSeconds: 2 });
  assert.equal(o.row.exit_reason, 'not_ready');
  assert.match(o.row.error, /not ready within 2 s/);
  const left = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(bin); } catch { return false; }
  });
  assert.deepEqual(left, [], 'the deaf server was stopped');
});

test('oom_killed: a real cgroup OOM kill of a server holding the upload in memory', { timeout: 600_000 }, async (t) => {
  if (!machineCanMakeMemoryCgroups()) return t.skip(needs('root', 'this machine lets no memory cgroup be made (mkdir under /sys/fs/cgroup failed): an OOM kill cannot be provoked'));
  const o = await one({ standinEnv: { STANDIN_HOLD_IN_MEMORY: '1' }, memoryMb: 96, sizeMiB: 192 });
  assert.equal(o.row.exit_reason, 'oom_killed', o.row.error);
  assert.match(o.failure!, /kernel OOM lines:[\s\S]*(memory cgroup out of memory|killed process)/i);
  // This kill's own lines, not an earlier one's left in the kernel log: they name this process's cgroup.
  assert.match(o.failure!.split('--- server log tail')[0], new RegExp(`/upload-perf-suite-${process.pid}-96\\b`));
  assert.ok(o.cgroup && !fs.existsSync(o.cgroup), 'the cgroup was removed');
});

test('a server binary that binds every interface is reachable only in a network namespace of its own', { timeout: 600_000 }, async (t) => {
  if (process.getuid?.() !== 0) return t.skip(needs('root', 'not root: no network namespace can be made (a run warns that the server is exposed)'));
  // Like PicoShare: a binary that listens on ":PORT". Here the stand-in, told to bind 0.0.0.0.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-netns-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const binary = path.join(dir, 'server');
  fs.writeFileSync(binary, `#!/bin/sh\nSTANDIN_HOST=0.0.0.0 exec ${hostServerArgv({ kind: 'standin', env: {} }).map(quote).join(' ')} "$@"\n`, { mode: 0o755 });
  const warnings: string[] = [];
  const provider = new LocalProvider({ server: { kind: 'binary', binaryPath: binary, env: {} }, secret: SECRET, readinessTimeoutSeconds: 30 }, { say: (m) => warnings.push(m) });
  const env = await provider.up(512);
  const ns = /network namespace (ups-\S+), server at (\S+)/.exec(String(env.facts.network));
  try {
    assert.ok(ns, `facts.network: ${env.facts.network}`);
    assert.equal(await env.startServer(), `http://${ns[2]}:4001`);
    const pids = (await $({ quiet: true })`ip netns pids ${ns[1]}`).stdout.trim().split('\n').filter(Boolean);
    assert.ok(pids.length >= 1, `no process in ${ns[1]}`); // the server (and, under tsx, its esbuild helper)
    assert.match((await $({ quiet: true })`ip netns exec ${ns[1]} ss -Hltn`).stdout, /0\.0\.0\.0:4001\b/, 'bound to every interface of its namespace');
    assert.doesNotMatch((await $({ quiet: true })`ss -Hltnp`).stdout, new RegExp(`pid=(${pids.join('|')}),`), 'and to none of the host\'s');
    const file = await ensureTestFile(8 * MiB);
    const o = await runIteration({
      env, file, secret: SECRET, uploadTimeoutSeconds: 60, authTimeoutSeconds: 30,
      testCase: { memoryMb: env.memoryMb, size: { label: '8MiB', bytes: file.bytes }, iteration: 1 },
    });
    assert.equal(o.row.exit_reason, 'success', o.row.error);
    assert.equal(o.row.sha256_ok, true);
    assert.ok(o.row.server_peak_rss_bytes! > 10 * MiB, 'memory sampled through /proc of a process in another namespace');
  } finally {
    await env.down();
  }
  assert.doesNotMatch((await $({ quiet: true })`ip netns list`).stdout, new RegExp(`^${ns![1]}\\b`, 'm'), 'namespace removed');
  assert.deepEqual(warnings, []);
});

test('a data folder that cannot be made: up() throws and leaves no cgroup; run-tests refuses such a UPS_LOCAL_DATA_DIR up front', { timeout: 600_000 }, async () => {
  const missing = path.join(os.tmpdir(), `ups-no-such-folder-${process.pid}`);
  const saved = process.env.UPS_LOCAL_DATA_DIR;
  process.env.UPS_LOCAL_DATA_DIR = missing;
  try {
    const provider = new LocalProvider({ server: { kind: 'standin', env: {} }, secret: SECRET, readinessTimeoutSeconds: 30 }, { say: () => {} });
    await assert.rejects(provider.up(256), /ENOENT/);
  } finally {
    if (saved === undefined) delete process.env.UPS_LOCAL_DATA_DIR; else process.env.UPS_LOCAL_DATA_DIR = saved;
  }
  assert.deepEqual(cgroupsOf(process.pid).filter((d) => d.endsWith('-256')), [], 'the cgroup made before the data folder failed is removed');

  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-baddata-'));
  const r = await $({ quiet: true, nothrow: true, cwd: os.tmpdir(), env: { ...process.env, UPS_LOCAL_DATA_DIR: missing } })`${path.join(SUITE_DIR, 'run-tests')} --sizes 1MiB --memory 256 --iterations 1 --out ${out}`;
  assert.equal(r.exitCode, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`^Error: UPS_LOCAL_DATA_DIR=${missing}: no such folder$`, 'm'));
  assert.deepEqual(fs.readdirSync(out), [], 'no results folder');
  fs.rmSync(out, { recursive: true, force: true });
});

test('a failure\'s server log tail is the failed server\'s own, not the one before it in the same environment', { timeout: 600_000 }, async () => {
  const provider = new LocalProvider({ server: { kind: 'standin', env: {} }, secret: SECRET, readinessTimeoutSeconds: 30 }, { say: () => {} });
  const env = await provider.up(512);
  const file = await ensureTestFile(8 * MiB);
  try {
    const iteration = (n: number, server: ServerSpec) => runIteration({
      env, file, secret: SECRET, uploadTimeoutSeconds: 60, authTimeoutSeconds: 30, server,
      testCase: { memoryMb: env.memoryMb, size: { label: '8MiB', bytes: file.bytes }, iteration: n },
    });
    assert.equal((await iteration(1, { kind: 'standin', env: {} })).row.exit_reason, 'success');
    const crashed = await iteration(2, { kind: 'standin', env: { STANDIN_CRASH_AFTER_BYTES: String(2 * MiB) } });
    assert.equal(crashed.row.exit_reason, 'process_died');
    const tail = crashed.failure!.split('--- server log tail:\n')[1];
    assert.equal(tail.match(/^--- server start/gm)?.length, 1, tail);
    assert.match(tail, /knobs: crash after 2097152 bytes[\s\S]*crash knob: exiting/);
    assert.doesNotMatch(tail, /DELETE \/api\/entry/, 'the first server\'s requests are not in it');
  } finally {
    await env.down();
  }
});
