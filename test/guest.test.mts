// The guest layer's pure parts on literal data: sampler lines to peaks, guest
// dmesg to OOM kills, the server's environment file; and the guest script
// itself, run on this host with its folder moved (working tree, exit status).
// The VM itself is exercised in qemu.test.mts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { envFileText, GUEST_SCRIPT, oomFromDmesg, summarizeSamples } from '../lib/guest.ts';

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
    const job = (args: string[], input = '') => spawnSync('sh', [script, ...args], { input, encoding: 'utf8', timeout: 20_000 });
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
