// The machine profile is kept per server (lib/machine-profile.ts): a run of the
// stand-in must not set the plan of a PicoShare run, which was 2.15x short when it did.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { profileFromRun, profileKey, readMachineProfile, writeMachineProfile } from '../lib/machine-profile.ts';
import { parseMatrix } from '../lib/matrix.ts';
import { serverOrigin } from '../lib/run.ts';
import type { MachineProfile } from '../lib/stats/plan.ts';
import { row } from './raw-row.mts';

const profile = (upload: number): MachineProfile => ({ upload_mib_s: upload, download_mib_s: 300, job_overhead_seconds: 1, paired_sd_pct: 8, source: `test ${upload}` });

describe('machine profile', { timeout: 60_000 }, () => {
  test('each server reads back its own profile, and an older one-profile file is none', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-profile-'));
    const saved = process.env.UPS_CACHE_DIR;
    process.env.UPS_CACHE_DIR = dir;
    try {
      assert.equal(readMachineProfile('standin'), null);
      writeMachineProfile('standin', profile(340));
      writeMachineProfile('source picoshare', profile(170));
      assert.equal(readMachineProfile('standin')?.upload_mib_s, 340);
      assert.equal(readMachineProfile('source picoshare')?.upload_mib_s, 170);
      assert.equal(readMachineProfile('binary picoshare'), null);
      writeMachineProfile('standin', profile(300)); // a later run of one server leaves the other's alone
      assert.equal(readMachineProfile('standin')?.upload_mib_s, 300);
      assert.equal(readMachineProfile('source picoshare')?.upload_mib_s, 170);
      fs.writeFileSync(path.join(dir, 'machine-profile.json'), JSON.stringify(profile(99)));
      assert.equal(readMachineProfile('standin'), null);
    } finally {
      if (saved === undefined) delete process.env.UPS_CACHE_DIR;
      else process.env.UPS_CACHE_DIR = saved;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the plan keys the profile as the run records its first server', () => {
    const standin = parseMatrix('sizes: [1MiB]\nmemory_limits: [512]\niterations: 2\nserver: standin\n', 'm.yaml');
    const binary = parseMatrix('sizes: [1MiB]\nmemory_limits: [512]\niterations: 2\nserver:\n  binary: ./bin/picoshare\n', '/x/m.yaml');
    const source = parseMatrix('sizes: [1MiB]\nmemory_limits: [512]\niterations: 2\nserver:\n  source: ../picoshare\n', '/x/suite/m.yaml');
    assert.equal(profileKey(serverOrigin(standin, [], [])), 'standin');
    assert.equal(profileKey(serverOrigin(standin, [], ['/opt/a/picoshare', '/opt/b/other'])), 'binary picoshare');
    assert.equal(profileKey(serverOrigin(binary, [], [])), 'binary picoshare');
    assert.equal(profileKey(serverOrigin(source, ['v1', 'v2'], [])), 'source picoshare');
    // --ref without server.source builds the current directory's checkout.
    assert.equal(profileKey(serverOrigin(standin, ['v1', 'v2'], [])), `source ${path.basename(process.cwd())}`);
    // As prepareServers records them (lib/run.ts).
    assert.equal(profileKey({ kind: 'source', path: '/work/picoshare' }), 'source picoshare');
    assert.equal(profileKey({ kind: 'standin', path: null }), 'standin');
  });

  test('a run\'s profile: speeds from its rows, the canary as its plan timed it before the run', () => {
    // 10MiB in 0.1 s up (100 MiB/s) and 200 MiB/s down; side 1 alternately 10% faster and slower.
    const side = (s: number) => Array.from({ length: 6 }, (_, i) => row({
      iteration: i + 1, exit_reason: 'success', duration_seconds: 0.1, download_mib_s: 200,
      throughput_mib_s: s === 0 ? 100 : 100 * (i % 2 ? 1.1 : 1 / 1.1),
    }));
    const sides = [side(0), side(1)];
    const jobs = sides.flat().map((r) => ({ row: r, seconds: 0.4 }));
    const p = profileFromRun(sides, jobs, '/r/x', 0.043)!;
    assert.ok(Math.abs(p.upload_mib_s - 100) < 1e-9 && Math.abs(p.download_mib_s - 200) < 1e-9, JSON.stringify(p));
    assert.ok(Math.abs(p.job_overhead_seconds - 0.25) < 1e-9, String(p.job_overhead_seconds)); // 0.4 - 0.1 - 10/200
    assert.ok(p.paired_sd_pct > 9 && p.paired_sd_pct < 12, String(p.paired_sd_pct));
    // One size here: its own figure is the run's.
    assert.deepEqual(Object.keys(p.paired_sd_pct_by_size!), [String(sides[0][0].file_size_bytes)]);
    assert.equal(p.paired_sd_pct_by_size![String(sides[0][0].file_size_bytes)], p.paired_sd_pct);
    assert.equal(p.canary_cpu_seconds, 0.043);
    assert.equal(profileFromRun(sides, jobs, '/r/x')!.canary_cpu_seconds, undefined); // a resumed run has no plan
  });

  test('a run\'s profile: each file size its own paired SD, the run\'s the median over its cases', () => {
    // 10MiB: side 1 alternately 10% faster and slower; 50MiB: 2%.
    const side = (s: number) => [[10, 1.1], [50, 1.02]].flatMap(([mib, swing]) => Array.from({ length: 6 }, (_, i) => row({
      file_size: `${mib}MiB`, file_size_bytes: mib * 2 ** 20, iteration: i + 1, exit_reason: 'success', duration_seconds: mib / 100, download_mib_s: 200,
      throughput_mib_s: s === 0 ? 100 : 100 * (i % 2 ? swing : 1 / swing),
    })));
    const sides = [side(0), side(1)];
    const p = profileFromRun(sides, sides.flat().map((r) => ({ row: r, seconds: 1 })), '/r/x')!;
    const by = p.paired_sd_pct_by_size!;
    assert.deepEqual(Object.keys(by).sort(), [String(10 * 2 ** 20), String(50 * 2 ** 20)].sort());
    assert.ok(by[String(10 * 2 ** 20)] > 9 && by[String(10 * 2 ** 20)] < 12, JSON.stringify(by));
    assert.ok(by[String(50 * 2 ** 20)] > 1.5 && by[String(50 * 2 ** 20)] < 2.5, JSON.stringify(by));
  });
});
