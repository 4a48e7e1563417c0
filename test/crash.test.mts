// Crash tests: ./run-tests killed with SIGKILL (no handler runs) at random
// moments, resumed after each kill, must end with every (case, iteration)
// exactly once per side, both sides of a run of two servers with the same
// iterations, the stopping rule's decisions those of an uninterrupted run, the
// comparison written, nothing running, and what each killed run left (its
// cgroup, data folder, network namespace) reaped by the next. Also: 3 s after
// a kill -9 mid-upload no process the suite started is alive (local; qemu in
// the slow tests), and compare-runs reads a run killed mid-write.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { AdaptiveRounds } from '../lib/stats/adaptive.ts';
import { runCanary } from '../lib/canary.ts';
import { caseKey } from '../lib/cases.ts';
import { interleave } from '../lib/stats/interleave.ts';
import { expandCases } from '../lib/matrix.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { parseRawCsv, type RawRow } from '../lib/results.ts';
import { matrixFromRecord, parseRunRecord } from '../lib/run-record.ts';
import {
  cgroupsOf, processesWith, qemuWhyNot, rawCsvText, readConfig, rowCount, serverWrapper, startRun, uploading, waitFor, type Run,
} from './run-helpers.mts';
import { needs } from './skips.mts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Data rows in every raw.csv under `dir` (the run's own, or each side's). */
function rowsUnder(dir: string | null): number {
  if (!dir || !fs.existsSync(dir)) return 0;
  if (fs.existsSync(path.join(dir, 'config.json'))) return rowCount(dir);
  return fs.readdirSync(dir).reduce((n, d) => n + rowCount(path.join(dir, d)), 0);
}

/** Network namespaces the local provider made for run `pid` (lib/providers/netns.ts names them ups-PID-N). */
function netnsOf(pid: number): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(`ups-${pid}-`));
}

interface Crashes {
  /** The folder --resume was given: the run's, or the parent of a run of several servers. */
  dir: string;
  last: Run;
  killed: number[];
}

/**
 * Starts `args`, then `kills` times: waits for a few rows, a random 0-4 s more, SIGKILLs run-tests,
 * checks within 3 s that no process it started is alive, and resumes. Returns after the last resume exits.
 */
async function killAndResume(t: TestContext, args: string[], env: Record<string, string>, out: string, secret: string, kills: number): Promise<Crashes> {
  let run = startRun(args, env, out);
  const t0 = Date.now();
  let dir: string | null = null;
  const killed: number[] = [];
  let rowsAtStart = 0;
  const finished = () => Promise.race([run.exited.then(() => true), sleep(0).then(() => false)]);
  for (let k = 1; k <= kills; k++) {
    // A kill once this process has measured 1 to 6 rows (not while a resume is still starting up), then 0-4 s on.
    const rowsBefore = rowsAtStart + 1 + Math.floor(Math.random() * 6);
    await waitFor('rows from this process', () => { dir = run.runDir() ?? dir; return rowsUnder(dir) >= rowsBefore || run.child.exitCode !== null; }, 600_000);
    await sleep(Math.random() * 4000);
    if (await finished()) break; // it finished first: nothing left to kill
    const rows = rowsUnder(dir);
    run.child.kill('SIGKILL');
    await run.exited;
    killed.push(run.pid);
    await sleep(3000);
    const alive = processesWith(secret);
    t.diagnostic(`kill ${k}: SIGKILL of pid ${run.pid} at ${((Date.now() - t0 - 3000) / 1000).toFixed(1)} s, ${rows} rows; 3 s later alive: ${alive.length ? alive.join('; ') : 'none'}`);
    assert.deepEqual(alive, [], `3 s after kill ${k}, processes the run started are still alive`);
    rowsAtStart = rowsUnder(dir);
    run = startRun(['--resume', dir!], env, out);
  }
  await run.exited;
  return { dir: dir!, last: run, killed };
}

/**
 * Resumes that went on with the run: one per kill, less the last when that kill came after the run had
 * recorded its end (its last moments: report, comparison, exit), which the last resume then says and leaves.
 */
const resumedAfter = (c: Crashes) => c.killed.length - (/already finished/.test(c.last.stderr()) ? 1 : 0);

/** Each side's rows, checked: every (case, iteration) at most once. */
const sideRows = (dir: string): RawRow[] => parseRawCsv(rawCsvText(dir), path.join(dir, 'raw.csv'));

function assertReaped(c: Crashes, secret: string, dataParent: string): void {
  assert.deepEqual(processesWith(secret), [], 'nothing of the run is running');
  for (const pid of c.killed) {
    assert.deepEqual(cgroupsOf(pid), [], `the cgroup of killed run ${pid} was reaped`);
    assert.deepEqual(netnsOf(pid), [], `the network namespace of killed run ${pid} was reaped`);
  }
  assert.deepEqual(fs.readdirSync(dataParent), [], 'every data folder was reaped');
}

describe('crash and resume', { timeout: 1_500_000 }, () => {
  test('a single-server run SIGKILLed at 4 random moments and resumed each time: every (case, iteration) once, nothing left', async (t) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-crash-one-'));
    const data = path.join(tmp, 'data');
    fs.mkdirSync(data);
    const secret = `crash-one-${process.pid}-${Date.now()}`;
    const env = { PS_SHARED_SECRET: secret, UPS_LOCAL_DATA_DIR: data, STANDIN_THROTTLE_MIBS: '8' };
    const c = await killAndResume(t, ['--sizes', '2MiB,4MiB', '--memory', '512', '--iterations', '10'], env, path.join(tmp, 'results'), secret, 4);
    const exit = await c.last.exited;
    assert.equal(exit.code, 0, c.last.stderr());
    const config = readConfig(c.dir);
    assert.equal(config.finished, true);
    assert.equal(config.resumes.length, resumedAfter(c), 'config.json records each resume');
    const rows = sideRows(c.dir);
    const want = expandCases(matrixFromRecord(parseRunRecord(config, 'config.json'), 'config.json')).map((x) => `${x.size.bytes}@${x.memoryMb}#${x.iteration}`).sort();
    assert.deepEqual(rows.map((r) => `${caseKey(r)}#${r.iteration}`).sort(), want, 'every (case, iteration) exactly once');
    t.diagnostic(`final: ${rows.length} rows for ${want.length} (case, iteration); resumes ${config.resumes.length}`);
    assertReaped(c, secret, data);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('a two-server adaptive run SIGKILLed at 4 random moments and resumed each time: the same iterations on both sides, the rule\'s stops, the comparison', async (t) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-crash-ab-'));
    const data = path.join(tmp, 'data');
    fs.mkdirSync(data);
    // The first server twice as slow: the rule decides each case at a look (16), and the second is faster: exit 0.
    const slow = await serverWrapper(tmp, 'slow', 'export STANDIN_SLOWDOWN_PCT=100');
    const fast = await serverWrapper(tmp, 'fast', '');
    const secret = `crash-ab-${process.pid}-${Date.now()}`;
    const env = { PS_SHARED_SECRET: secret, UPS_LOCAL_DATA_DIR: data };
    const c = await killAndResume(t, ['--binary', slow, '--binary', fast, '--sizes', '2MiB,4MiB', '--memory', '512'], env, path.join(tmp, 'results'), secret, 4);
    const exit = await c.last.exited;
    assert.equal(exit.code, 0, c.last.stderr());
    assert.ok(c.killed.length >= 1, 'killed at least once');
    const sides = ['slow', 'fast'].map((n) => path.join(c.dir, n));
    const records = sides.map((d) => parseRunRecord(readConfig(d), 'config.json'));
    const rows = sides.map(sideRows);
    for (const [i, r] of records.entries()) {
      assert.equal(r.finished, true, `${sides[i]} finished`);
      assert.equal(r.resumes?.length, resumedAfter(c), 'config.json records each resume');
    }
    for (const [k, r] of (records[0].resumes ?? []).entries()) {
      t.diagnostic(`resume ${k + 1}: rounds only some sides had completed, dropped and run again: ${JSON.stringify(r.dropped_rounds ?? [])}`);
    }
    const iterationsOf = (side: RawRow[], key: string) => side.filter((r) => caseKey(r) === key).map((r) => r.iteration).sort((a, b) => a - b);
    const cases = [...new Set(rows[0].map(caseKey))];
    assert.equal(cases.length, 2);
    // The stopping rule as an uninterrupted run applies it: every row, in the seeded order, into a fresh AdaptiveRounds.
    const rule = records[0].ab!.stopping_rule!;
    const m = matrixFromRecord(records[0], 'config.json');
    const rounds = new AdaptiveRounds(rule, 2, m.warmupIterations);
    for (const j of interleave(expandCases(m), 2, records[0].ab!.seed!)) {
      const row = rows[j.side].find((r) => r.iteration === j.case.iteration && r.file_size_bytes === j.case.size.bytes);
      if (row) rounds.record(j.side, row);
    }
    assert.deepEqual(records[0].ab!.stops, rounds.all(), 'the recorded stops are those of the rows taken in order');
    assert.deepEqual(records[1].ab!.stops, rounds.all());
    for (const key of cases) {
      const [a, b] = rows.map((side) => iterationsOf(side, key));
      assert.deepEqual(a, b, `${key}: both sides have the same iterations`);
      const stop = rounds.all().find((s) => s.case === key);
      assert.ok(stop, `${key} stopped`);
      assert.deepEqual(a, Array.from({ length: m.warmupIterations + stop.rounds }, (_, i) => i + 1),
        `${key}: every iteration once, up to the look that stopped it (${stop.rounds}) and no further`);
      t.diagnostic(`final: ${key}: ${a.length} iterations on each side, stopped ${stop.state} at ${stop.rounds} rounds (${stop.verdicts.join(', ')})`);
    }
    const compare = JSON.parse(fs.readFileSync(path.join(c.dir, 'compare', 'compare.json'), 'utf8'));
    assert.equal(compare.cases.length, 2, 'the comparison is written');
    assertReaped(c, secret, data);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});

describe('nothing outlives the suite', { timeout: 900_000 }, () => {
  test('local: 3 s after kill -9 of run-tests mid-upload, no process it started is alive', async (t) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-kill9-'));
    const data = path.join(tmp, 'data');
    fs.mkdirSync(data);
    const secret = `kill9-${process.pid}-${Date.now()}`;
    const run = startRun(['--sizes', '8MiB', '--memory', '512', '--iterations', '3'],
      { PS_SHARED_SECRET: secret, STANDIN_THROTTLE_MIBS: '2', UPS_LOCAL_DATA_DIR: data }, path.join(tmp, 'results'));
    await waitFor('an upload in progress', () => uploading(data), 300_000);
    const before = processesWith(secret);
    assert.ok(before.some((p) => p.includes('-db ')), `the server runs: ${before.join('; ')}`);
    run.child.kill('SIGKILL');
    await run.exited;
    await sleep(3000);
    const after = processesWith(secret);
    t.diagnostic(`before the kill: ${before.join('; ')}`);
    t.diagnostic(`3 s after: ${after.length ? after.join('; ') : 'none'}`);
    assert.deepEqual(after, [], 'the server died with run-tests');
    // Second line of defence: the next run reaps the cgroup and data folder the killed one left.
    const next = startRun(['--sizes', '1MiB', '--memory', '512', '--iterations', '1'], { UPS_LOCAL_DATA_DIR: data }, path.join(tmp, 'results2'));
    assert.equal((await next.exited).code, 0, next.stderr());
    assert.deepEqual(cgroupsOf(run.pid), []);
    assert.deepEqual(fs.readdirSync(data), []);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('the watcher (a Vagrant guest\'s QEMU, which the suite does not parent): killed with its owner, however the owner dies', async () => {
    // An owner process that hands a process it did not start (a sleep, started detached by a shell) to the watcher.
    const script = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ups-watch-')), 'owner.mts');
    fs.writeFileSync(script, [
      `import { spawnSync } from 'node:child_process';`,
      `import { killWithSuite } from ${JSON.stringify(path.join(SUITE_DIR, 'lib', 'providers', 'reaper.ts'))};`,
      `const pid = Number(spawnSync('sh', ['-c', 'setsid sleep 300 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).stdout.trim());`,
      `killWithSuite(pid);`,
      `console.log(pid);`,
      `setInterval(() => {}, 1000);`,
    ].join('\n'));
    const owner = spawn(process.execPath, ['--import', path.join(SUITE_DIR, 'node_modules', 'tsx', 'dist', 'loader.mjs'), script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    owner.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    await waitFor('the owner to hand its process over', () => /^\d+\n/.test(out), 60_000);
    const pid = Number(out.trim());
    await sleep(1000); // the watcher has read its line
    const alive = (p: number) => { try { process.kill(p, 0); return true; } catch { return false; } };
    assert.ok(alive(pid), 'the given process runs while its owner lives');
    owner.kill('SIGKILL');
    // Reaped between the two checks, its /proc entry is gone: that is killed too.
    const zombie = (p: number) => { try { return fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(' ')[2] === 'Z'; } catch { return true; } };
    await waitFor('the given process to be killed', () => !alive(pid) || zombie(pid), 3000);
    fs.rmSync(path.dirname(script), { recursive: true, force: true });
  });

  test('qemu: 3 s after kill -9 of run-tests mid-upload, its QEMU process is gone', { skip: process.env.UPS_SLOW_TESTS !== '1' && needs('slow', 'a VM boot: set UPS_SLOW_TESTS=1') }, async (t) => {
    const why = await qemuWhyNot();
    if (why) return t.skip(needs('vm', why));
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-kill9-qemu-'));
    const secret = `kill9-qemu-${process.pid}-${Date.now()}`;
    const run = startRun(['--sizes', '8MiB', '--memory', '512', '--iterations', '3', '--provider', 'qemu'],
      { PS_SHARED_SECRET: secret, STANDIN_THROTTLE_MIBS: '1' }, path.join(tmp, 'results'));
    // Mid-upload: the progress line a log gets every 5 s of an upload, with part of the 8 MiB sent (at 1 MiB/s).
    await waitFor('an upload under way', () => /#\d+ {2}[1-7]\/8 MiB {2}/.test(run.stderr()), 900_000);
    const before = processesWith(secret);
    run.child.kill('SIGKILL');
    await run.exited;
    await sleep(3000);
    const after = processesWith(secret);
    t.diagnostic(`before the kill: ${before.join('; ')}`);
    t.diagnostic(`3 s after: ${after.length ? after.join('; ') : 'none'}`);
    assert.ok(before.some((p) => p.includes('qemu-system')), 'QEMU ran');
    assert.deepEqual(after, [], 'QEMU died with run-tests');
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});

test('compare-runs and merge-runs read a run killed mid-write: its torn last row left out with a warning naming --resume; a torn row elsewhere is an error', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-torn-'));
  const base = path.join(tmp, 'base');
  const cand = path.join(tmp, 'cand');
  fs.cpSync(path.join(SUITE_DIR, 'test', 'fixtures', 'runs', 'base'), base, { recursive: true });
  fs.cpSync(path.join(SUITE_DIR, 'test', 'fixtures', 'runs', 'cand'), cand, { recursive: true });
  const config = JSON.parse(fs.readFileSync(path.join(cand, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(cand, 'config.json'), JSON.stringify({ ...config, finished: false, stop_reason: null }));
  const whole = fs.readFileSync(path.join(cand, 'raw.csv'), 'utf8');
  const lines = whole.split('\n').filter(Boolean);
  fs.writeFileSync(path.join(cand, 'raw.csv'), `${lines.slice(0, -1).join('\n')}\n${lines.at(-1)!.slice(0, 40)}`); // killed mid-append
  const compare = (...args: string[]) => spawnSync(path.join(SUITE_DIR, 'compare-runs'), args, { encoding: 'utf8', cwd: tmp });
  const r = compare(base, cand, '--out', path.join(tmp, 'cmp'));
  assert.ok(r.status === 0 || r.status === 1, `exit ${r.status}: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`Warning: ${cand}/raw\\.csv: its last row is cut off .*that row is left out; run-tests --resume ${cand} finishes the run`));
  const merge = spawnSync(path.join(SUITE_DIR, 'merge-runs'), [cand, '--out', path.join(tmp, 'merged')], { encoding: 'utf8', cwd: tmp });
  assert.match(merge.stderr, /Warning: .*cand\/raw\.csv: its last row is cut off .*run-tests --resume/, merge.stderr);
  // Cut in the middle of the file: not a kill's trace; refused as before.
  fs.writeFileSync(path.join(cand, 'raw.csv'), `${lines.slice(0, 3).join('\n')}\n${lines[3].slice(0, 40)}\n${lines.slice(4).join('\n')}\n`);
  const mid = compare(base, cand, '--out', path.join(tmp, 'cmp2'));
  assert.equal(mid.status, 2, mid.stderr);
  assert.match(mid.stderr, /raw\.csv line 4: \d+ of \d+ columns \(truncated or malformed row\)/);
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('the canary file of a run killed while writing it is removed by the next canary; a live run\'s is left alone', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-canary-left-'));
  const dead = spawnSync('true').pid!; // exited: its pid names a run that is gone
  const live = process.ppid;
  for (const pid of [dead, live]) fs.writeFileSync(path.join(dir, `ups-canary-${pid}.bin`), 'x');
  runCanary(dir);
  assert.deepEqual(fs.readdirSync(dir), [`ups-canary-${live}.bin`]);
  fs.rmSync(dir, { recursive: true, force: true });
});
