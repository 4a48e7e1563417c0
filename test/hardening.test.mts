// Issue 19's attacks, each as a test: what a hostile new user did to the
// suite (huge counts, folders it cannot make, cut or shared result folders,
// bad knobs and files) and the one clear refusal or right result expected.
// The real executables run under a time limit where a hang was the defect.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { compareRuns } from '../lib/stats/compare.ts';
import { LOCK_FILE } from '../lib/lock.ts';
import { parseRawCsv } from '../lib/results.ts';
import { parseRunRecord } from '../lib/run-record.ts';
import { HELP } from '../lib/options.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { Progress } from '../lib/progress.ts';
import { readResumeState } from '../lib/resume.ts';
import { secretWarning } from '../lib/secret.ts';
import { STANDIN_KNOBS, knobProblem } from '../lib/standin/standin-knobs.ts';
import { parseSize, SIZE_UNITS } from '../lib/units.ts';
import { mountTmpfs, rawCsvText, readConfig, rowCount, startRun, waitFor } from './run-helpers.mts';
import { row } from './raw-row.mts';
import { needs } from './skips.mts';

const RUN_TESTS = path.join(SUITE_DIR, 'run-tests');
const COMPARE_RUNS = path.join(SUITE_DIR, 'compare-runs');
const FIXTURES = path.join(SUITE_DIR, 'test', 'fixtures', 'runs');

function tmp(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ups-harden-${prefix}-`));
}

/** Runs an executable to its end, or kills it at `seconds` (then status is null and the test fails on it). */
function exec(file: string, args: string[], opts: { env?: Record<string, string | undefined>; seconds?: number; cwd?: string } = {}) {
  // An undefined value removes the variable (a secret that must come from .env).
  const env = Object.fromEntries(Object.entries({ ...process.env, ...opts.env }).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const r = spawnSync(file, args, {
    cwd: opts.cwd ?? os.tmpdir(), env, encoding: 'utf8', timeout: (opts.seconds ?? 60) * 1000, killSignal: 'SIGKILL',
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe('hardening', { timeout: 600_000 }, () => {
  test('3: --iterations 999999999 is refused at once with the bound (exit 2), nothing made; a matrix file too', () => {
    const out = tmp('iter');
    const r = exec(RUN_TESTS, ['--iterations', '999999999', '--sizes', '1MiB', '--memory', '256', '--out', out], { seconds: 20 });
    assert.equal(r.status, 2, `${r.signal ?? ''} ${r.stderr}`);
    assert.equal(r.stderr.trim(), 'Error: --iterations: at most 1000 iterations per case (got "999999999")');
    assert.deepEqual(fs.readdirSync(out), []);
    const m = path.join(out, 'm.yaml');
    fs.writeFileSync(m, 'sizes: [1MiB]\nmemory_limits: [256]\niterations: 1001\n');
    const f = exec(RUN_TESTS, ['--matrix', m, '--out', out], { seconds: 20 });
    assert.equal(f.status, 2, f.stderr);
    assert.match(f.stderr, /m\.yaml:3: iterations: at most 1000 iterations per case \(got 1001\)/);
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('4: a cache folder under /proc is refused at once (exit 2) for the stand-in bundle and the test files', () => {
    const out = tmp('proc');
    const r = exec(RUN_TESTS, ['--sizes', '4MiB', '--memory', '256', '--iterations', '1', '--out', out], { env: { UPS_CACHE_DIR: '/proc/nope' }, seconds: 30 });
    assert.equal(r.status, 2, `${r.signal ?? ''} ${r.stderr}`);
    assert.match(r.stderr, /^Error: cannot create the stand-in's cache folder \/proc\/nope\/standin: ENOENT: no such file or directory at \/proc\/nope$/m);
    // The test files' cache, reached with a server binary (no stand-in bundle): the same refusal, not a spin.
    const bin = path.join(out, 'server');
    fs.writeFileSync(bin, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    const m = path.join(out, 'm.yaml');
    fs.writeFileSync(m, `sizes: [4MiB]\nmemory_limits: [256]\niterations: 1\nserver: {binary: ${bin}}\n`);
    const b = exec(RUN_TESTS, ['--matrix', m, '--out', path.join(out, 'results')], { env: { UPS_CACHE_DIR: '/proc/nope' }, seconds: 30 });
    assert.equal(b.status, 2, `${b.signal ?? ''} ${b.stderr}`);
    assert.match(b.stderr, /^Error: cannot create the test files' cache folder \/proc\/nope\/testfiles\/splitmix64: ENOENT: no such file or directory at \/proc\/nope$/m);
    assert.ok(!fs.existsSync(path.join(out, 'results')), 'no results folder');
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('5, 16: --resume of a run whose raw.csv was emptied or cut in its header restores the header; rows without one are refused', () => {
    const out = tmp('header');
    // 16: a .env whose secret opens a quote it never closes is warned about (the secret itself never shown).
    fs.writeFileSync(path.join(out, '.env'), 'PS_SHARED_SECRET="unterminated-Xq7\n');
    const env = { PS_SHARED_SECRET: undefined };
    const first = exec(RUN_TESTS, ['--sizes', '1MiB', '--memory', '256', '--iterations', '2', '--out', out], { env, cwd: out });
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /^WARNING: PS_SHARED_SECRET starts with a " that is never closed/m);
    assert.doesNotMatch(first.stderr + first.stdout, /unterminated-Xq7/);
    const dir = first.stdout.trim().split('\n').at(-1)!;
    const unfinish = () => fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...readConfig(dir), finished: false }));
    for (const cut of ['', 'file_size,memory_li']) {
      unfinish();
      fs.writeFileSync(path.join(dir, 'raw.csv'), cut);
      const r = exec(RUN_TESTS, ['--resume', dir], { env, cwd: out });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(parseRawCsv(rawCsvText(dir), 'raw.csv').length, 2, `cut ${JSON.stringify(cut)}`);
      const c = exec(COMPARE_RUNS, [dir, path.join(FIXTURES, 'cand'), '--out', path.join(out, 'cmp')]);
      assert.notEqual(c.status, 2, `compare-runs reads the resumed folder: ${c.stderr}`);
    }
    unfinish();
    const rows = rawCsvText(dir).split('\n').slice(1).join('\n');
    fs.writeFileSync(path.join(dir, 'raw.csv'), rows);
    const refused = exec(RUN_TESTS, ['--resume', dir], { env, cwd: out });
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /^Error: --resume: .*raw\.csv line 1 is not raw\.csv's header .*restore the header line/m);
    assert.equal(fs.readFileSync(path.join(dir, 'raw.csv'), 'utf8'), rows, 'raw.csv untouched');
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('6: a second run on a folder being written is refused with the writer\'s pid; a dead writer\'s lock is taken over', async () => {
    const out = tmp('lock');
    const secret = `lock-${process.pid}`;
    const run = startRun(['--sizes', '8MiB', '--memory', '256', '--iterations', '3'], { PS_SHARED_SECRET: secret, STANDIN_THROTTLE_MIBS: '4' }, out);
    try {
      await waitFor('the first row', () => rowCount(run.runDir()) >= 1, 120_000);
      const dir = run.runDir()!;
      assert.equal(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8').trim(), String(run.pid));
      const second = exec(RUN_TESTS, ['--resume', dir], { env: { PS_SHARED_SECRET: secret } });
      assert.equal(second.status, 2, second.stderr);
      assert.equal(second.stderr.trim(), `Error: ${dir} is being written by run-tests pid ${run.pid} (${path.join(dir, LOCK_FILE)}): wait for it to end, or stop it, then try again`);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
    const dir = run.runDir()!;
    assert.ok(!fs.existsSync(path.join(dir, LOCK_FILE)), 'an ended run removes its lock');
    // A writer killed with SIGKILL leaves its lock: its successor takes it over and finishes the run.
    const dead = spawnSync('true').pid!;
    fs.writeFileSync(path.join(dir, LOCK_FILE), `${dead}\n`);
    const resumed = exec(RUN_TESTS, ['--resume', dir], { env: { PS_SHARED_SECRET: secret } });
    assert.equal(resumed.status, 0, resumed.stderr);
    const keys = parseRawCsv(rawCsvText(dir), 'raw.csv').map((r) => r.iteration).sort();
    assert.deepEqual(keys, [1, 2, 3], 'every iteration once');
    // compare-runs refuses a folder that two writers doubled, with the lines.
    fs.appendFileSync(path.join(dir, 'raw.csv'), rawCsvText(dir).split('\n')[2] + '\n');
    const c = exec(COMPARE_RUNS, [dir, path.join(FIXTURES, 'cand'), '--out', path.join(out, 'cmp')]);
    assert.equal(c.status, 2, c.stderr);
    assert.match(c.stderr, /raw\.csv: lines 3 and 5 are both 256MB 8MiB iteration 2 \(two runs wrote this folder at once\?\): keep one of them\n$/);
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('17: a complete last row without its newline is kept by --resume, a cut one dropped', () => {
    const dir = tmp('lastrow');
    fs.cpSync(path.join(FIXTURES, 'base'), dir, { recursive: true });
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, finished: false }));
    const text = fs.readFileSync(path.join(dir, 'raw.csv'), 'utf8').trimEnd();
    const n = text.split('\n').length - 1;
    fs.writeFileSync(path.join(dir, 'raw.csv'), text);
    const whole = readResumeState(dir);
    assert.equal(whole.sides[0].rows.length, n);
    assert.equal(whole.sides[0].droppedPartialLine, null);
    assert.equal(fs.readFileSync(path.join(dir, 'raw.csv'), 'utf8'), `${text}\n`, 'its newline restored');
    const cut = text.slice(0, text.lastIndexOf(',') - 3);
    fs.writeFileSync(path.join(dir, 'raw.csv'), cut);
    const dropped = readResumeState(dir);
    assert.equal(dropped.sides[0].rows.length, n - 1);
    assert.equal(dropped.sides[0].droppedPartialLine, cut.slice(cut.lastIndexOf('\n') + 1));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('7, 15, 13, 21: compare-runs refuses --out in a results folder, a run against itself, bad files; one balanced line', () => {
    const out = tmp('cmp');
    const base = path.join(out, 'base');
    const cand = path.join(out, 'cand');
    fs.cpSync(path.join(FIXTURES, 'base'), base, { recursive: true });
    fs.cpSync(path.join(FIXTURES, 'cand'), cand, { recursive: true });
    const svg = path.join(cand, 'throughput.svg');
    fs.writeFileSync(svg, '<svg>the run\'s own</svg>');
    const refuse = (args: string[], re: RegExp) => {
      const r = exec(COMPARE_RUNS, args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
    };
    refuse([base, cand, '--out', cand], /^Error: --out .*cand is a results folder: its own throughput\.svg would be overwritten/);
    assert.equal(fs.readFileSync(svg, 'utf8'), '<svg>the run\'s own</svg>');
    fs.symlinkSync(base, path.join(out, 'link'));
    for (const other of [base, `${base}/`, path.join(out, 'link')]) {
      refuse([base, other, '--out', path.join(out, 'x')], /^Error: BASELINE and CANDIDATE are the same folder \(.*base\): a run compared with itself/);
    }
    // 21: node's hint for an unknown option carried an unbalanced quote.
    refuse(['--bogus', base, cand], /^Error: Unknown option '--bogus' \(see --help\)\n$/);
    // 13: raw.csv a folder; out-of-range figures, named by file, line and column.
    const bad = path.join(out, 'bad');
    fs.cpSync(base, bad, { recursive: true });
    const csv = fs.readFileSync(path.join(base, 'raw.csv'), 'utf8').split('\n');
    const header = csv[0].split(',');
    const edit = (col: string, value: string) => {
      const cells = csv[1].split(',');
      cells[header.indexOf(col)] = value;
      fs.writeFileSync(path.join(bad, 'raw.csv'), [csv[0], cells.join(','), ...csv.slice(2)].join('\n'));
    };
    for (const [col, value, why] of [['duration_seconds', '-1', 'is negative'], ['duration_seconds', '0', 'must be above 0 for a success'],
      ['throughput_mib_s', '-5', 'is negative'], ['throughput_mib_s', '0', 'must be above 0']]) {
      edit(col, value);
      refuse([bad, cand, '--out', path.join(out, 'x')], new RegExp(`^Error: .*bad/raw\\.csv line 2, column ${col}: "${value}" ${why}`));
    }
    fs.rmSync(path.join(bad, 'raw.csv'));
    fs.mkdirSync(path.join(bad, 'raw.csv'));
    refuse([bad, cand, '--out', path.join(out, 'x')], /^Error: .*bad\/raw\.csv: not a file\n$/);
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('8, 14: a full disk, a read-only mount and /sys as --out: one line each, no temporary file left', (t) => {
    const out = tmp('disk');
    const sys = exec(RUN_TESTS, ['--sizes', '1MiB', '--memory', '256', '--iterations', '1', '--out', '/sys/kernel']);
    if (process.getuid?.() === 0) {
      assert.equal(sys.status, 2, sys.stderr);
      assert.match(sys.stderr, /^Error: cannot create the results folder \/sys\/kernel\/[\d-]+: EPERM: operation not permitted$/m);
    }
    const full = mountTmpfs(path.join(out, 'full'), 1);
    if (!full) return t.skip(needs('root', 'cannot mount a tmpfs here (needs root)'));
    try {
      fs.writeFileSync(path.join(full.dir, 'ballast'), Buffer.alloc(1024 * 1024 - 1));
      const r = exec(RUN_TESTS, ['--sizes', '1MiB', '--memory', '256', '--iterations', '1', '--out', full.dir]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^Error: cannot write ${full.dir}/[\\d-]+/(config\\.json|run\\.lock): ENOSPC: no space left on device \\(0 B free in ${full.dir}/[\\d-]+\\)$`, 'm'));
      const made = fs.readdirSync(full.dir).filter((d) => d !== 'ballast');
      const left = made.flatMap((d) => fs.readdirSync(path.join(full.dir, d)));
      assert.deepEqual(left.filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');
      // The folder, when one was made, is printed as a run's last stdout line; none is left without being named.
      assert.deepEqual(r.stdout.trim().split('\n').filter(Boolean), made.map((d) => path.join(full.dir, d)));
    } finally {
      full.unmount();
    }
    const ro = mountTmpfs(path.join(out, 'ro'), 1)!;
    try {
      spawnSync('mount', ['-o', 'remount,ro', ro.dir]);
      for (const [where, re] of [[ro.dir, /^Error: cannot create the results folder .*: EROFS: read-only file system$/m],
        [path.join(ro.dir, 'sub'), /^Error: cannot create the output folder .*sub: EROFS: read-only file system at .*sub$/m]] as const) {
        const r = exec(RUN_TESTS, ['--sizes', '1MiB', '--memory', '256', '--iterations', '1', '--out', where]);
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, re);
      }
    } finally {
      ro.unmount();
    }
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('9, 10, 11, 21: sizes, --out "" and stand-in knobs refused before anything starts (exit 2), docs in step with the units', () => {
    const out = tmp('input');
    const refused = (args: string[], env: Record<string, string>, re: RegExp) => {
      const r = exec(RUN_TESTS, [...args, '--out', path.join(out, 'results')], { env, cwd: out, seconds: 30 });
      assert.equal(r.status, 2, `${args.join(' ')} ${JSON.stringify(env)}: ${r.stderr}`);
      assert.match(r.stderr, re);
    };
    const run = ['--memory', '256', '--iterations', '1'];
    refused(['--sizes', '1.25B', ...run], {}, /^Error: --sizes: not a whole number of bytes \(1\.25 B\) \(got "1\.25B"\)$/m);
    refused(['--sizes', '4', ...run], {}, /^Error: --sizes: a size needs a unit, e.g\. 4MiB or 4B/m);
    refused(['--sizes', '999999TiB', ...run], {}, /^Error: --sizes: at most 1 TiB/m);
    refused(['--sizes', '9007199254740993B', ...run], {}, /^Error: --sizes: at most 1 TiB/m);
    refused(['--sizes', '0B', ...run], {}, /^Error: --sizes: must be at least 1 byte \(got "0B"\)$/m);
    refused(['--sizes', '1MiB', ...run], { STANDIN_STATUS: 'abc' }, /^Error: stand-in knob STANDIN_STATUS="abc": expected a whole number 100-599$/m);
    refused(['--sizes', '1MiB', ...run], { STANDIN_THROTLE_MIBS: '5' }, /^Error: stand-in knob STANDIN_THROTLE_MIBS: not a stand-in knob/m);
    assert.ok(!fs.existsSync(path.join(out, 'results')), 'nothing made');
    const empty = exec(RUN_TESTS, ['--sizes', '1MiB', ...run, '--out', ''], { cwd: out });
    assert.equal(empty.status, 2, empty.stderr);
    assert.match(empty.stderr, /^Error: --out: empty folder name/m);
    assert.deepEqual(fs.readdirSync(out), [], 'no results folder in the current directory');
    // Every unit the code takes is in the README, --help and the error text.
    const readme = fs.readFileSync(path.join(SUITE_DIR, 'README.md'), 'utf8');
    for (const unit of SIZE_UNITS.split(', ')) {
      assert.ok(parseSize(`1${unit}`) > 0);
      assert.match(readme, new RegExp(`\\b${unit}\\b`), `README: ${unit}`);
      assert.match(HELP.split('--memory')[0], new RegExp(`\\b${unit}\\b`), `--help: ${unit}`);
    }
    assert.throws(() => parseSize('4XB'), new RegExp(`units: ${SIZE_UNITS}`));
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('11: every knob value the suite refuses, the stand-in refuses too (its own rules)', () => {
    const bad: [string, string][] = [['STANDIN_STATUS', 'abc'], ['STANDIN_STATUS', '99'], ['STANDIN_STATUS', '600'], ['STANDIN_THROTTLE_MIBS', '0'],
      ['STANDIN_THROTTLE_MIBS', '-1'], ['STANDIN_PROCESSING_DELAY_MS', '1.5'], ['STANDIN_CRASH_AFTER_BYTES', '0']];
    for (const [name, value] of bad) {
      assert.ok(knobProblem(name, value), `${name}=${value}`);
      const r = exec(process.execPath, ['--import', 'tsx', path.join(SUITE_DIR, 'lib', 'standin', 'standin.mts')],
        { env: { [name]: value, PS_SHARED_SECRET: 'x', PORT: '0' }, cwd: SUITE_DIR, seconds: 30 });
      assert.equal(r.status, 2, `the stand-in with ${name}=${value}: ${r.stderr}`);
    }
    const good: Record<string, string> = { STANDIN_STATUS: '503', STANDIN_THROTTLE_MIBS: '0.5', STANDIN_DOWNLOAD_ROUTE: 'bang' };
    for (const name of Object.keys(STANDIN_KNOBS)) assert.equal(knobProblem(name, good[name] ?? '1'), null, name);
  });
});

test('second pass: an absurd memory limit, an empty --resume, one "got" per message', () => {
  const cases: [string[], RegExp][] = [
    // It ran, unenforced: the cgroup could not take 10^20 MB.
    [['--sizes', '1MiB', '--memory', '99999999999999999999'], /^Error: --memory: too large \(at most 9007199254740991\) \(got "99999999999999999999"\)$/m],
    [['--sizes', '1MiB', '--memory', '2000000'], /^Error: --memory: at most 1048576 MB \(1 TiB\) \(got "2000000"\)$/m],
    // It resumed the current directory.
    [['--resume', ''], /^Error: --resume: empty folder name/m],
    [['--iterations', '0'], /^Error: --iterations: not a positive whole number \(got "0"\)$/m],
  ];
  const out = tmp('second');
  for (const [args, re] of cases) {
    const r = exec(RUN_TESTS, args.includes('--resume') ? args : [...args, '--out', out], { cwd: out, seconds: 30 });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  assert.deepEqual(fs.readdirSync(out), []);
  fs.rmSync(out, { recursive: true, force: true });
});

test('16: secretWarning names an unclosed quote, never the secret', () => {
  const w = secretWarning('"unterminated-Zz9');
  assert.ok(w && !w.includes('Zz9'));
  assert.equal(secretWarning("'closed'"), null);
  assert.equal(secretWarning('plain'), null);
});

test('18: the --iterations advised after a 1-iteration run counts the warm-up such a run would then get', () => {
  const one = (n: number) => [...Array(n)].map((_, i) => row({ iteration: i + 1, duration_seconds: 1 + i / 10 }));
  for (const [iterations, warmup] of [[1, 0], [4, 1]]) {
    const config = parseRunRecord({ matrix: { iterations, warmup_iterations: warmup } }, 'config.json');
    const c = compareRuns({ name: 'a', config, rows: one(iterations) }, { name: 'b', config, rows: one(iterations) });
    // One value a side, no spread: --iterations 5 runs 1 warm-up + 4 measured, the fewest at which 4 v 4 can reach p < 0.05.
    // With a spread (3 v 3), what it needs to detect the noise band, plus the warm-up.
    const want = iterations === 1 ? 5 : c.cases[0].metrics[0].detectable!.iterations + 1;
    assert.equal(c.inconclusive?.iterationsNeeded, want, `after --iterations ${iterations}`);
  }
});

test('21: the live line says the server is working once every byte is sent, not "ETA 0 s"', async () => {
  let text = '';
  const p = new Progress({ write: (s: string) => { text += s; return true; }, isTTY: true }, 50);
  const u = p.upload('[1/1] 256MB 100MiB #1', 100 * 1024 * 1024);
  u.update(50 * 1024 * 1024);
  await new Promise((r) => setTimeout(r, 120));
  u.update(100 * 1024 * 1024);
  await new Promise((r) => setTimeout(r, 1100));
  u.done();
  const after = text.slice(text.indexOf('100/100 MiB'));
  assert.doesNotMatch(after, /ETA/);
  assert.match(after, /^100\/100 MiB {2}all sent, waiting for the response \(0 s\)[\s\S]*waiting for the response \(1 s\)/);
});

test('22: a long verification download has its own progress lines in a log, from 5 s after it starts', async () => {
  let text = '';
  const p = new Progress({ write: (s: string) => { text += s; return true; }, isTTY: false }, 100);
  const u = p.upload('[1/1] 1024MB 500MiB #1', 500 * 1024 * 1024);
  u.update(500 * 1024 * 1024);
  u.done();
  u.verify(1024 * 1024, 500 * 1024 * 1024); // the download's first bytes start its clock, and say nothing yet
  assert.doesNotMatch(text, /verifying/);
  await new Promise((r) => setTimeout(r, 150));
  u.verify(100 * 1024 * 1024, 500 * 1024 * 1024);
  u.verify(101 * 1024 * 1024, 500 * 1024 * 1024); // within the interval: no line
  const lines = text.split('\n').filter((l) => l.includes('verifying'));
  assert.equal(lines.length, 1, text);
  assert.match(lines[0], /^\[1\/1\] 1024MB 500MiB #1 {2}verifying the download 100\/500 MiB {2}\d+\.\d MiB\/s {2}ETA \d+ s$/);
});

test('20: charts mark a failed case with its reason, label every size, and name whole runs in the comparison legend', async () => {
  const { comparisonChartSvg, throughputChartSvg } = await import('../lib/render/charts.ts');
  const sizes = [1, 2, 4, 8, 16, 20, 32, 64, 128, 256];
  const rows = [80, 512].flatMap((mem) => sizes.flatMap((s) => [1, 2, 3].map((iteration) => {
    const fail = mem === 80 && s > 16;
    return row({
      file_size: `${s}MiB`, file_size_bytes: s * 2 ** 20, memory_limit: `${mem}MB`, memory_limit_mb: mem, iteration,
      duration_seconds: s / 100, exit_reason: fail ? 'oom_killed' : 'success', failure_phase: fail ? 'verification' : null,
    });
  })));
  const texts = (svg: string) => [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  const run = texts(await throughputChartSvg(rows, parseRunRecord({ matrix: { warmup_iterations: 1 } }, 'config.json')));
  for (const s of sizes) assert.ok(run.includes(`${s}MiB`), `size ${s}MiB labelled: ${run.join(' | ')}`);
  assert.equal(run.filter((t) => t === 'oom_killed (verification)').length, 5, 'each failed case marked with its reason');
  const names = ['20261202-101500-baseline-long', '20261202-113000-candidate-long'];
  const cmp = texts(await comparisonChartSvg({ name: names[0], config: null, rows }, { name: names[1], config: null, rows }));
  assert.ok(cmp.includes(`baseline ${names[0]}`) && cmp.includes(`candidate ${names[1]}`), cmp.filter((t) => /baseline|candidate/.test(t)).join(' | '));
});
