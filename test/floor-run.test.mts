// ./run-tests --memory-floor end to end, on real memory cgroups: the stand-in
// holding every upload in RAM (STANDIN_HOLD_IN_MEMORY=1) is OOM-killed below a
// limit that rises with the file size; the search brackets it, every probe is a
// raw.csv row at its own limit with the kernel's lines in failures.log; a
// holding server against a streaming one needs more memory (exit 1); the ends
// of the range are said so; Ctrl-C and --resume continue a search from its probes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseRawCsv, type RawRow } from '../lib/results.ts';
import { leftovers, machineCanMakeMemoryCgroups, rawCsvText, rowCount, serverWrapper, startRun, waitFor } from './run-helpers.mts';
import { needs } from './skips.mts';

const NO_CGROUP = needs('root', 'this machine lets no memory cgroup be made (needs root and the cgroup memory controller): no OOM kill can be provoked');

interface Floor { server: string; file_size: string; status: string; floor_mb: number | null; highest_failing_mb: number | null; flaky_mb: [number, number] | null; failed_phase: string | null; probes: { memory_limit_mb: number; passed: number; failed: number }[] }

async function floorRun(args: string[], env: Record<string, string> = {}) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-floor-'));
  const secret = `floor-${process.pid}-${Date.now()}`;
  const r = startRun(['--memory-floor', ...args], { PS_SHARED_SECRET: secret, ...env }, out);
  const exit = await r.exited;
  const dir = r.stdout().trim().split('\n').at(-1)!;
  return { exit: exit.code, dir, out, stderr: r.stderr(), secret, pid: r.pid };
}

const floorsOf = (dir: string) => (JSON.parse(fs.readFileSync(path.join(dir, 'floor.json'), 'utf8')) as { floors: Floor[] }).floors;
const rowsOf = (dir: string): RawRow[] => parseRawCsv(rawCsvText(dir), 'raw.csv');

describe('memory floor, end to end', { timeout: 1_200_000 }, () => {
  test('the holding stand-in: the floor rises with the file size, bracketed by the OOM kills seen', async (t) => {
    if (!machineCanMakeMemoryCgroups()) return t.skip(NO_CGROUP);
    const r = await floorRun(['--sizes', '16MiB,48MiB', '--floor-range', '16..512', '--floor-tries', '2'], { STANDIN_HOLD_IN_MEMORY: '1' });
    assert.equal(r.exit, 0, r.stderr);
    const [small, large] = floorsOf(r.dir);
    for (const f of [small, large]) t.diagnostic(`${f.file_size}: floor ${f.floor_mb} MB, bracket (${f.highest_failing_mb}, ${f.floor_mb}], flaky ${JSON.stringify(f.flaky_mb)}, failed ${f.failed_phase}, probes ${f.probes.map((p) => `${p.memory_limit_mb}:${p.passed}/${p.failed}`).join(' ')}`);
    for (const f of [small, large]) assert.equal(f.status, 'floor', JSON.stringify(f));
    assert.ok(large.floor_mb! > small.floor_mb!, `48MiB needs more than 16MiB: ${large.floor_mb} vs ${small.floor_mb}`);
    // Holding 32 MiB more needs at least most of 32 MiB more.
    assert.ok(large.floor_mb! - small.floor_mb! >= 24, `${large.floor_mb} - ${small.floor_mb}`);
    const rows = rowsOf(r.dir);
    const failures = fs.readFileSync(path.join(r.dir, 'failures.log'), 'utf8');
    for (const f of [small, large]) {
      const mine = rows.filter((x) => x.file_size === f.file_size);
      // Every probe is rows at its own limit; every try at or above the floor survived, every OOM kill was below it.
      assert.deepEqual([...new Set(mine.map((x) => x.memory_limit_mb))].sort((a, b) => a - b), f.probes.map((p) => p.memory_limit_mb).sort((a, b) => a - b));
      for (const x of mine.filter((y) => y.memory_limit_mb >= f.floor_mb!)) assert.equal(x.exit_reason, 'success', `${f.file_size} at ${x.memory_limit_mb} MB`);
      const killed = mine.filter((x) => x.exit_reason === 'oom_killed');
      assert.ok(killed.length > 0, `${f.file_size}: some probe was OOM-killed`);
      assert.equal(Math.max(...killed.map((x) => x.memory_limit_mb)), f.highest_failing_mb, `${f.file_size}: the bracket's low end is the highest OOM kill`);
      assert.ok(f.floor_mb! - f.highest_failing_mb! <= Math.max(4, 0.05 * f.floor_mb!), `${f.file_size}: bracket (${f.highest_failing_mb}, ${f.floor_mb}]`);
      assert.match(f.failed_phase!, /^oom_killed \((upload|processing|verification)\)$/);
      // The kill at the bracket's low end keeps its phase and the kernel's lines, naming that probe's cgroup.
      const entry = failures.split(/^(?==== )/m).find((e) => e.includes(` ${f.highest_failing_mb}MB ${f.file_size} iteration `) && e.includes(': oom_killed'))!;
      assert.match(entry.split('--- server log tail')[0], new RegExp(`kernel OOM lines:[\\s\\S]*upload-perf-suite-${r.pid}-${f.highest_failing_mb}\\b`), entry);
    }
    const md = fs.readFileSync(path.join(r.dir, 'floor.md'), 'utf8');
    assert.match(md, new RegExp(`\\| standin \\| 16MiB \\| ${small.floor_mb} \\| \\(${small.highest_failing_mb}, ${small.floor_mb}\\]`));
    assert.match(fs.readFileSync(path.join(r.dir, 'report.md'), 'utf8'), /## Memory floor/);
    assert.match(fs.readFileSync(path.join(r.dir, 'floor.svg'), 'utf8'), /^<svg/);
    assert.deepEqual(leftovers(r.secret, r.pid), []);
    fs.rmSync(r.out, { recursive: true, force: true });
  });

  test('holding against streaming: needs more memory (exit 1); interrupted, then --resume continues from the probes', async (t) => {
    if (!machineCanMakeMemoryCgroups()) return t.skip(NO_CGROUP);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-floor-servers-'));
    const streaming = await serverWrapper(tmp, 'streaming', '');
    const holding = await serverWrapper(tmp, 'holding', 'export STANDIN_HOLD_IN_MEMORY=1');
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-floor-'));
    const secret = `floor-ab-${process.pid}`;
    const args = ['--memory-floor', '--binary', streaming, '--binary', holding, '--sizes', '32MiB', '--floor-range', '16..512', '--floor-tries', '2'];
    const first = startRun(args, { PS_SHARED_SECRET: secret }, out);
    const side = () => (first.runDir() ? path.join(first.runDir()!, 'streaming') : null);
    await waitFor('two probes of the first server', () => rowCount(side()) >= 3, 300_000);
    first.child.kill('SIGINT');
    assert.equal((await first.exited).code, 130, first.stderr());
    const parent = first.runDir()!;
    const before = rowsOf(path.join(parent, 'streaming'));
    assert.ok(before.length >= 3);
    const again = startRun(['--resume', parent], { PS_SHARED_SECRET: secret });
    const exit = await again.exited;
    assert.equal(exit.code, 1, again.stderr());
    assert.equal(again.stdout().trim().split('\n').at(-1), parent);
    const after = rowsOf(path.join(parent, 'streaming'));
    // The rows from before the interruption are kept and the search went on from them: no limit was tried more
    // often than the tries a probe needs (2), whatever it had when it was cut.
    assert.deepEqual(after.slice(0, before.length), before);
    const perLimit = new Map<number, number>();
    for (const x of after) perLimit.set(x.memory_limit_mb, (perLimit.get(x.memory_limit_mb) ?? 0) + 1);
    for (const [mb, n] of perLimit) assert.ok(n <= 2, `${mb} MB tried ${n} times`);
    const [s, h] = floorsOf(parent);
    t.diagnostic(`32MiB: streaming floor ${s.floor_mb} MB (${s.highest_failing_mb}, ${s.floor_mb}], holding ${h.floor_mb} MB (${h.highest_failing_mb}, ${h.floor_mb}]; interrupted after ${before.length} rows, resumed to ${after.length}`);
    assert.equal(s.server, 'streaming');
    assert.equal(h.server, 'holding');
    assert.ok(h.floor_mb! > s.floor_mb!, `${h.floor_mb} vs ${s.floor_mb}`);
    const cmp = JSON.parse(fs.readFileSync(path.join(parent, 'compare', 'compare.json'), 'utf8'));
    assert.equal(cmp.cases[0].verdict, 'needs more memory');
    assert.match(fs.readFileSync(path.join(parent, 'compare', 'compare.md'), 'utf8'), /\| 32MiB \| \d+ \| \d+ \| \+\d+ \| [\d.]+ \| needs more memory \|/);
    assert.match(again.stderr(), /compare: holding against streaming at 32MiB: needs more memory/);
    assert.equal(JSON.parse(fs.readFileSync(path.join(parent, 'streaming', 'config.json'), 'utf8')).resumes.length, 1);
    assert.deepEqual(leftovers(secret, again.pid), []);
    fs.rmSync(out, { recursive: true, force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('the ends of the range: survives even the bottom (said so, exit 0); fails even the top (no floor, said so, exit 1)', async (t) => {
    if (!machineCanMakeMemoryCgroups()) return t.skip(NO_CGROUP);
    const low = await floorRun(['--sizes', '8MiB', '--floor-range', '256..300', '--floor-tries', '1']);
    assert.equal(low.exit, 0, low.stderr);
    const [l] = floorsOf(low.dir);
    assert.deepEqual([l.status, l.floor_mb, l.highest_failing_mb], ['at-bottom', 256, null]);
    t.diagnostic(`streaming 8MiB in 256..300: ${l.status}, floor ${l.floor_mb}`);
    // Bisected down to the bottom, which is probed and passes like every probe before it.
    assert.deepEqual(l.probes.map((p) => [p.memory_limit_mb, p.failed]), [[277, 0], [266, 0], [256, 0]]);
    assert.match(fs.readFileSync(path.join(low.dir, 'floor.md'), 'utf8'), /standin 8MiB: 256 MB or less: survived even the range's bottom/);
    const high = await floorRun(['--sizes', '48MiB', '--floor-range', '16..64', '--floor-tries', '1'], { STANDIN_HOLD_IN_MEMORY: '1' });
    assert.equal(high.exit, 1, high.stderr);
    const [h] = floorsOf(high.dir);
    assert.deepEqual([h.status, h.floor_mb, h.highest_failing_mb], ['no-floor', null, 64]);
    t.diagnostic(`holding 48MiB in 16..64: ${h.status}, highest failing ${h.highest_failing_mb}, exit ${high.exit}`);
    assert.equal(rowsOf(high.dir).filter((x) => x.memory_limit_mb === 64)[0].exit_reason, 'oom_killed');
    assert.match(fs.readFileSync(path.join(high.dir, 'floor.md'), 'utf8'), /standin 48MiB: no floor: failed even at 64 MB, the range's top \(oom_killed/);
    assert.match(high.stderr, /floor: standin 48MiB: no floor/);
    for (const r of [low, high]) fs.rmSync(r.out, { recursive: true, force: true });
  });
});
