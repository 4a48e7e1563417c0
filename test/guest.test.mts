// The guest layer's pure parts on literal data: sampler lines to peaks, guest
// dmesg to OOM kills, the server's environment file, the spend counters; and
// the guest script itself, run on this host with its folder moved (working
// tree, exit status, the spend counters).
// The VM itself is exercised in qemu.test.mts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { $ } from 'zx';
import { authenticate, closeClient, probeRoot, upload } from '../lib/client.ts';
import { envFileText, GUEST_SCRIPT, guestSpend, hwmAtStop, oomFromDmesg, splitSampleStop, summarizeSamples } from '../lib/providers/guest.ts';
import { freePort, hostServerArgv } from '../lib/providers/server.ts';
import { ensureTestFile } from '../lib/testfiles.ts';
import { MiB } from '../lib/units.ts';

test('summarizeSamples: peaks in bytes, VmHWM counts, dead-process dashes and junk skipped', () => {
  const text = [
    '101.25 60000 20000 21000 0',
    '101.50 90000 45000 45000 10240',
    'garbage line',
    '101.75 150000 - - 20480', // server gone: no RSS, memory and disk still sampled
    '102.00 70000 30000 52000 4',
    '',
  ].join('\n');
  assert.deepEqual(summarizeSamples(text), {
    peakMemoryBytes: 150000 * 1024,
    serverPeakRssBytes: 52000 * 1024,
    peakDiskBytes: 20480 * 1024,
    samples: 4,
  });
});

test('summarizeSamples: no samples gives nulls, not zeros', () => {
  assert.deepEqual(summarizeSamples(''), { peakMemoryBytes: null, serverPeakRssBytes: null, peakDiskBytes: null, samples: 0 });
});

test('oomFromDmesg: counts killed processes, keeps the OOM lines', () => {
  const lines = [
    '[  120.000001] virtio_net virtio0 enp0s2: renamed',
    '[  180.512345] node invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0',
    '[  180.600000] Mem-Info:',
    '[  180.700000] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/ssh.service,task=node,pid=612,uid=0',
    '[  180.700100] Out of memory: Killed process 612 (node) total-vm:1203440kB, anon-rss:170232kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:1024kB oom_score_adj:0',
    '[  180.900000] oom_reaper: reaped process 612 (node), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB',
  ];
  const r = oomFromDmesg(lines);
  assert.equal(r.oomKills, 1);
  assert.deepEqual(r.oomLines, [lines[1], lines[3], lines[4], lines[5]]);
  assert.deepEqual(oomFromDmesg([lines[0]]), { oomKills: 0, oomLines: [] });
});

test('envFileText: KEY=VALUE lines, values kept verbatim, newlines refused', () => {
  assert.equal(envFileText({ PS_SHARED_SECRET: "s3cr$t 'x' \"y\"", PORT: '4001' }), "PS_SHARED_SECRET=s3cr$t 'x' \"y\"\nPORT=4001\n");
  assert.throws(() => envFileText({ A: 'one\ntwo' }), /cannot pass env A/);
  assert.throws(() => envFileText({ 'BAD-NAME': 'x' }), /cannot pass env BAD-NAME/);
});

test('guest script, run here with its folder moved: unpack a tree, start the server in it, alive, its exit status, stop', { timeout: 60_000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'guest-script-'));
  try {
    const root = path.join(tmp, 'srv');
    fs.mkdirSync(root);
    const script = path.join(root, 'guest.sh');
    fs.writeFileSync(script, GUEST_SCRIPT.replace('R=/srv/ups', `R=${root}`));
    const job = (args: string[], input = '') => spawnSync('sh', [script, ...args], { input, cwd: tmp, encoding: 'utf8', timeout: 20_000 });
    // A "server" that says where it runs and what it read there, then lives on or exits as told.
    const tree = path.join(tmp, 'tree');
    fs.mkdirSync(path.join(tree, 'templates'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'templates', 'root.html'), 'page from the tree\n');
    fs.writeFileSync(path.join(tree, 'server'), '#!/bin/sh\npwd\ncat templates/root.html\necho "args $*"\n[ -n "$EXIT_WITH" ] && exit "$EXIT_WITH"\nexec sleep 30\n', { mode: 0o755 });
    const tar = path.join(tmp, 'tree.tar');
    assert.equal(spawnSync('tar', ['-cf', tar, '-C', tree, '.']).status, 0);
    const cwd = path.join(root, 'tree-1');
    assert.equal(job(['unpack', tar, cwd]).status, 0);
    assert.ok(!fs.existsSync(tar), 'the tar is removed once unpacked');

    assert.equal(job(['start', cwd, `${cwd}/server`], 'PS_SHARED_SECRET=s\n').status, 0);
    assert.equal(job(['alive']).stdout.trim(), 'alive');
    const pid = Number(fs.readFileSync(path.join(root, 'run', 'server.pid'), 'utf8'));
    assert.equal(job(['stop', '50']).status, 0);
    assert.throws(() => process.kill(pid, 0), 'the server is stopped');
    const log = job(['log-tail', '20']).stdout;
    assert.match(log, new RegExp(`^${cwd}$`, 'm'), 'it ran in its tree');
    assert.match(log, /^page from the tree$/m);
    assert.match(log, new RegExp(`^args -db ${root}/run/data/store\\.db$`, 'm'));

    assert.equal(job(['start', cwd, `${cwd}/server`], 'EXIT_WITH=7\n').status, 0);
    assert.equal(job(['alive']).stdout.trim(), 'exited 7');
    // "-": the run folder, as before working directories were given.
    assert.equal(job(['start', '-', `${cwd}/server`], 'EXIT_WITH=3\n').status, 0);
    assert.equal(job(['alive']).stdout.trim(), 'exited 3');
    assert.match(job(['log-tail', '5']).stdout, new RegExp(`^${root}/run$`, 'm'));
    job(['stop', '50']);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

// The guest script itself, run on this host under another root (UPS_GUEST_ROOT): the same jobs a VM runs,
// so its spend counters are checked against known figures without booting one.
describe('guest script on the host: spend counters', { timeout: 120_000 }, () => {
  test('start, sample-start, an upload burning 1 s of CPU, sample-stop: CPU, writes, data folder and timeline', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-guest-root-'));
    const script = path.join(root, 'guest.sh');
    fs.writeFileSync(script, GUEST_SCRIPT);
    // Run from an empty folder: a root that does not expand (a literal `${UPS_GUEST_ROOT:-/srv/ups}`, once committed
    // at the repository's root by this test) would write there instead.
    const away = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-guest-cwd-'));
    const sh = (words: string[], input = '') => $({ quiet: true, input, cwd: away, env: { ...process.env, UPS_GUEST_ROOT: root } })`sh ${script} ${words}`;
    const port = await freePort();
    const secret = 'guest-host-secret-Kd2';
    try {
      await sh(['start', '-', ...hostServerArgv({ kind: 'standin', env: {} })], envFileText({
        PATH: process.env.PATH ?? '/usr/bin:/bin', PS_SHARED_SECRET: secret, PORT: String(port), TMPDIR: `${root}/run/tmp`,
        STANDIN_BURN_CPU_MS: '1000',
      }));
      assert.deepEqual(fs.readdirSync(away), [], 'nothing written where the script was run from');
      assert.match(fs.readFileSync(path.join(root, 'server.log'), 'utf8'), /^--- server start /, 'the server log is under UPS_GUEST_ROOT');
      const url = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 200 && !(await probeRoot(url).then((a) => a.ready)); i++) await new Promise((r) => setTimeout(r, 50));
      const cookie = await authenticate(url, secret);
      const file = await ensureTestFile(16 * MiB);
      await sh(['sample-start']);
      const u = await upload({ baseUrl: url, cookie, file: file.path, timeoutMs: 60_000 });
      assert.equal(u.status, 200, u.body);
      const out = (await sh(['sample-stop'])).stdout;
      const { spend, timeline } = guestSpend(out);
      assert.ok(spend.cpuUserSeconds! >= 1.0 && spend.cpuUserSeconds! < 2.5, `user CPU ${spend.cpuUserSeconds} s, 1 s burnt`);
      assert.ok(spend.writeBytes! >= 32 * MiB && spend.writeBytes! <= 32 * MiB + 256 * 1024, `written ${spend.writeBytes}`);
      // du -sk of the data and spool folders, in KiB
      assert.ok(spend.dataDirBytes! >= 16 * MiB && spend.dataDirBytes! <= 16 * MiB + 256 * 1024, `data folder ${spend.dataDirBytes}`);
      assert.ok(timeline.length >= 2 && timeline[0].t >= 0 && timeline[0].t < 1, `timeline ${JSON.stringify(timeline.slice(0, 2))}`);
      assert.ok(timeline.every((p) => p.serverRssBytes! > 10 * MiB && p.envMemoryBytes! > 0));
      // The server's high-water mark at the stop: at least every RSS sampled before it.
      const hwm = hwmAtStop(splitSampleStop(out).spendEnd);
      assert.ok(hwm !== null && hwm >= Math.max(...timeline.map((p) => p.serverRssBytes!)), `VmHWM at the stop ${hwm}`);
    } finally {
      await sh(['stop', '50']).catch(() => {});
      await closeClient();
      fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(away, { recursive: true, force: true });
    }
  });
});

test('guestSpend: counters from the stat and io files at start and end; the last sampled ones when the server is gone', () => {
  const stat = (u: number, s: number, cu: number, cs: number) => `612 (picoshare (x)) S 1 612 612 0 -1 4194560 1 0 0 0 ${u} ${s} ${cu} ${cs} 20 0 9 0 100 1 1`;
  const out = [
    '100.00 60000 20000 21000 4 10 5 1000', '100.25 90000 45000 45000 20480 150 20 1048576',
    '--- spend-start', 'clk_tck 100', 'uptime 99.90 10.0', stat(8, 4, 2, 1), 'rchar: 5', 'write_bytes: 4096',
    '--- spend-end', stat(200, 30, 2, 1), 'write_bytes: 2101248',
    '--- disk', '16400\t/srv/ups/run/data', '4\t/srv/ups/run/tmp', '--- dmesg', '',
  ].join('\n');
  const { spend, timeline } = guestSpend(out);
  assert.deepEqual(spend, { cpuUserSeconds: 1.92, cpuSystemSeconds: 0.26, writeBytes: 2097152, dataDirBytes: 16404 * 1024 });
  assert.deepEqual(timeline.map((p) => [Number(p.t.toFixed(2)), p.envMemoryBytes, p.serverRssBytes, p.dataDirBytes]),
    [[0.1, 60000 * 1024, 20000 * 1024, 4096], [0.35, 90000 * 1024, 45000 * 1024, 20480 * 1024]]);
  // No end reading (the server was OOM-killed): the last sampler line's counters.
  const gone = guestSpend(out.replace(/--- spend-end\n[^]*?--- disk/, '--- spend-end\n--- disk'));
  assert.deepEqual([gone.spend.cpuUserSeconds, gone.spend.cpuSystemSeconds, gone.spend.writeBytes], [1.4, 0.15, 1044480]);
});
