// An environment dying mid-case, for real: ./run-tests --provider qemu, the
// 512 MB VM's QEMU process SIGKILLed from outside after its first row. The
// iteration it died in must be a recorded failure naming the dead VM, a new
// 512 MB VM must boot and run that limit's last iteration, the next memory
// limit's VM must run, and no QEMU process or work folder may be left. It
// boots three VMs (minutes under TCG), so it runs only with UPS_SLOW_TESTS=1.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readGuestImage } from '../lib/providers/image.ts';
import { parseRawCsv } from '../lib/results.ts';
import { findTool } from '../lib/tools.ts';
import { leftovers, rawCsvText, readConfig, rowCount, startRun, waitFor } from './run-helpers.mts';
import { needs } from './skips.mts';

/** QEMU processes of the run with this pid (the qemu provider names its VMs ups-PID-MB). */
function vmsOf(runPid: number, memoryMb?: number): number[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      const args = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      const name = args[args.indexOf('-name') + 1] ?? '';
      return args[0].includes('qemu-system') && (memoryMb ? name === `ups-${runPid}-${memoryMb}` : name.startsWith(`ups-${runPid}-`));
    } catch { return false; }
  }).map(Number);
}

test('a VM killed from outside mid-case: that iteration fails, a new VM runs the rest, nothing left', { timeout: 1_200_000 }, async (t) => {
  if (process.env.UPS_SLOW_TESTS !== '1') return t.skip(needs('slow', 'boots three VMs (2-6 min under TCG on a loaded host); set UPS_SLOW_TESTS=1'));
  if (!findTool('qemu-system-x86_64')) return t.skip(needs('vm', 'qemu-system-x86_64 not installed'));
  if (!(await readGuestImage())) return t.skip(needs('vm', 'no guest image built (./run-tests --provider qemu builds one)'));
  const secret = `vmkill-${Date.now()}`;
  const run = startRun(['--provider', 'qemu', '--sizes', '4MiB', '--memory', '512,256', '--iterations', '3'], { PS_SHARED_SECRET: secret });
  t.after(() => {
    run.child.kill('SIGKILL');
    for (const pid of vmsOf(run.pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(run.out, { recursive: true, force: true });
  });
  await waitFor('the first row', () => rowCount(run.runDir()) >= 1, 900_000);
  const [vm] = vmsOf(run.pid, 512);
  assert.ok(vm, 'the 512 MB VM is running');
  process.kill(vm, 'SIGKILL');
  const exit = await run.exited;
  assert.equal(exit.code, 0, run.stderr());
  const rows = parseRawCsv(rawCsvText(run.runDir()), 'raw.csv');
  assert.deepEqual(rows.map((r) => `${r.memory_limit_mb}#${r.iteration}`), ['512#1', '512#2', '512#3', '256#1', '256#2', '256#3']);
  assert.equal(rows[0].exit_reason, 'success');
  assert.notEqual(rows[1].exit_reason, 'success', '512 MB #2, when the VM died');
  assert.match(rows[1].error, /the VM is gone \(its process exited\)/);
  for (const r of [rows[2], ...rows.slice(3)]) assert.equal(r.exit_reason, 'success', `${r.memory_limit_mb}#${r.iteration}: ${r.error}`);
  assert.match(run.stderr(), /512 MB: the environment died; bringing up a new one \(replacement 1 of at most 2\)/);
  const config = readConfig(run.runDir()!);
  assert.equal(config.finished, true);
  assert.equal(config.provider_facts['512'].environments, 2, 'config.json says the limit took two VMs');
  assert.deepEqual(vmsOf(run.pid), [], 'no VM left');
  assert.deepEqual(leftovers(secret, run.pid), []);
  assert.deepEqual(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('ups-qemu-')).filter((n) => {
    try { return fs.readFileSync(path.join(os.tmpdir(), n, 'qemu.pid'), 'utf8').trim() === String(vm); } catch { return false; }
  }), [], 'the dead VM\'s work folder was removed');
});
