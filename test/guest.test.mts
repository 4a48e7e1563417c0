// The guest layer's pure parts on literal data: sampler lines to peaks, guest
// dmesg to OOM kills, the server's environment file. The VM itself is
// exercised in qemu.test.mts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { envFileText, oomFromDmesg, summarizeSamples } from '../lib/guest.ts';

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
