// Resume planning on literal data: which cases are left, in order; the matrix
// read back from config.json; a raw.csv cut off mid-line.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { expandCases } from '../lib/matrix.ts';
import { mergeResumedRecord, planResume, readResumeState } from '../lib/resume.ts';
import { matrixFromRecord, parseRunRecord } from '../lib/run-record.ts';
import { rawCsvHeader, rawCsvLine, type RawRow } from '../lib/results.ts';

const CONFIG = {
  finished: false,
  provider: 'local',
  server: { kind: 'standin', path: null, git: null, standin_env: {} },
  matrix: {
    sizes: [{ label: '5MiB', bytes: 5242880 }, { label: '20MiB', bytes: 20971520 }],
    memory_limits_mb: [256, 512],
    iterations: 2, warmup_iterations: 1, upload_timeout_seconds: 600, readiness_timeout_seconds: 30, vm_cpus: 1, concurrency: [1],
  },
};

const row = (memoryMb: number, bytes: number, iteration: number, exit_reason: RawRow['exit_reason'] = 'success'): RawRow => ({
  file_size: `${bytes / 2 ** 20}MiB`, memory_limit: `${memoryMb}MB`, duration_seconds: 1, peak_memory_bytes: null,
  http_status: 200, exit_reason, iteration, file_size_bytes: bytes, memory_limit_mb: memoryMb, transfer_seconds: null,
  processing_seconds: null, throughput_mib_s: null, server_peak_rss_bytes: null, sha256_ok: null, started_at: '', error: '', host_cpu_pressure_pct: null, failure_phase: null,
  server_cpu_user_seconds: null, server_cpu_system_seconds: null, server_write_bytes: null, data_dir_bytes: null,
  download_ttfb_seconds: null, download_mib_s: null, concurrency: 1, iteration_peak_rss_bytes: null,
});

/** config.json's JSON as the one loader reads it. */
const record = (json: object) => parseRunRecord(json, 'config.json');
const matrixFromConfig = (json: object, where: string) => matrixFromRecord(parseRunRecord(json, where), where);

const names = (cs: { memoryMb: number; size: { label: string }; iteration: number }[]) =>
  cs.map((c) => `${c.memoryMb}/${c.size.label}/${c.iteration}`);

test('matrixFromConfig gives back the recorded matrix, cases in the original order', { timeout: 120_000 }, () => {
  const m = matrixFromConfig(CONFIG, 'config.json');
  assert.deepEqual(m.memoryLimitsMb, [256, 512]);
  assert.equal(m.iterations, 2);
  assert.equal(m.warmupIterations, 1);
  assert.equal(m.readinessTimeoutSeconds, 30);
  assert.deepEqual(m.server, { kind: 'standin' });
  assert.deepEqual(names(expandCases(m)), [
    '512/20MiB/1', '512/20MiB/2', '512/5MiB/1', '512/5MiB/2', '256/20MiB/1', '256/20MiB/2', '256/5MiB/1', '256/5MiB/2',
  ]);
});

test('planResume: rows done (failures included) are skipped; the rest keep their order', { timeout: 120_000 }, () => {
  const cases = expandCases(matrixFromConfig(CONFIG, 'config.json'));
  const plan = planResume(cases, [row(512, 20971520, 1), row(512, 20971520, 2, 'timeout'), row(512, 5242880, 1)]);
  assert.deepEqual(names(plan.remaining), ['512/5MiB/2', '256/20MiB/1', '256/20MiB/2', '256/5MiB/1', '256/5MiB/2']);
  assert.equal(plan.done, 3);
  assert.equal(plan.stray, 0);
});

test('planResume: nothing done, everything done, a stray row', { timeout: 120_000 }, () => {
  const cases = expandCases(matrixFromConfig(CONFIG, 'config.json'));
  assert.equal(planResume(cases, []).remaining.length, 8);
  const all = cases.map((c) => row(c.memoryMb, c.size.bytes, c.iteration));
  const full = planResume(cases, [...all, row(1024, 5242880, 1)]);
  assert.deepEqual(full.remaining, []);
  assert.equal(full.done, 8);
  assert.equal(full.stray, 1);
});

test('matrixFromConfig: binary and source servers; a config without a matrix or server is an input error', { timeout: 120_000 }, () => {
  assert.deepEqual(matrixFromConfig({ ...CONFIG, server: { kind: 'binary', path: '/opt/ps', git: null } }, 'c').server,
    { kind: 'binary', binary: '/opt/ps' });
  const source = matrixFromConfig({
    ...CONFIG, server: { kind: 'source', path: '/src/ps', git: null, build: { ref: 'WORKTREE', command: ['go', 'build', '-o', '{out}'] } },
  }, 'c');
  assert.deepEqual(source.server, { kind: 'source', source: '/src/ps', build: ['go', 'build', '-o', '{out}'] });
  assert.throws(() => matrixFromConfig({ ...CONFIG, matrix: undefined as never }, 'x/config.json'), /x\/config.json: no usable "matrix"/);
  assert.throws(() => matrixFromConfig({ ...CONFIG, server: { kind: 'binary', path: null, git: null } }, 'c'), /cannot tell which server/);
  assert.throws(() => matrixFromConfig({ ...CONFIG, provider: 'docker' }, 'c'), /provider: must be one of local, qemu, vagrant \(got "docker"\)/);
});

test('readResumeState drops a cut-off last line of raw.csv and keeps the whole rows', { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-resume-'));
  try {
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(CONFIG));
    const whole = rawCsvHeader() + rawCsvLine(row(512, 20971520, 1)) + rawCsvLine(row(512, 20971520, 2));
    fs.writeFileSync(path.join(dir, 'raw.csv'), whole + '20MiB,512MB,1.2');
    const s = readResumeState(dir);
    assert.equal(s.sides[0].rows.length, 2);
    assert.equal(s.sides[0].droppedPartialLine, '20MiB,512MB,1.2');
    assert.equal(fs.readFileSync(path.join(dir, 'raw.csv'), 'utf8'), whole);
    fs.writeFileSync(path.join(dir, 'raw.csv'), rawCsvHeader());
    assert.equal(readResumeState(dir).sides[0].rows.length, 0, 'a header alone is no rows, not an error');
    fs.rmSync(path.join(dir, 'raw.csv'));
    assert.equal(readResumeState(dir).sides[0].rows.length, 0, 'no raw.csv yet: interrupted before the first row');
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...CONFIG, ab: { refs: ['a', 'b'] } }));
    assert.throws(() => readResumeState(dir), /one side of a run of 2 servers; resume them together, from their parent folder: --resume \//);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => readResumeState('/nonexistent-ups'), /^InputError: --resume: \/nonexistent-ups: no such folder$/);
});

test('readResumeState of a run of two servers: both sides in order; a round only one side completed is dropped from it (and its samples)', () => {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-resume-ab-'));
  try {
    const side = (name: string, thisRef: number, rows: RawRow[], torn = '') => {
      const dir = path.join(parent, name);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...CONFIG, ab: { refs: ['a', 'b'], this_ref: thisRef, seed: 7, parent, order: 'seeded' } }));
      fs.writeFileSync(path.join(dir, 'raw.csv'), rawCsvHeader() + rows.map(rawCsvLine).join('') + torn);
      fs.writeFileSync(path.join(dir, 'samples.csv'), 'memory_limit_mb,file_size_bytes,concurrency,iteration,t_seconds,env_memory_bytes,server_rss_bytes,data_dir_bytes,phase\n' +
        rows.map((r) => `${r.memory_limit_mb},${r.file_size_bytes},1,${r.iteration},0.1,1,1,1,transfer\n`).join(''));
      return dir;
    };
    const b = side('b', 1, [row(512, 20971520, 1), row(512, 20971520, 2)], '20MiB,512MB,0.');
    const a = side('a', 0, [row(512, 20971520, 1), row(512, 20971520, 2), row(512, 5242880, 1)]);
    const s = readResumeState(parent);
    assert.equal(s.parent, parent);
    assert.deepEqual(s.sides.map((x) => path.basename(x.dir)), ['a', 'b'], 'in the order given (ab.this_ref), not by name');
    assert.deepEqual(s.sides.map((x) => x.rows.map((r) => `${r.file_size}#${r.iteration}`)), [['20MiB#1', '20MiB#2'], ['20MiB#1', '20MiB#2']]);
    assert.deepEqual(s.droppedRounds, [{ case: '5242880@512', iteration: 1, sides: ['a'] }]);
    assert.equal(s.sides[1].droppedPartialLine, '20MiB,512MB,0.');
    assert.equal(fs.readFileSync(path.join(a, 'raw.csv'), 'utf8'), rawCsvHeader() + [row(512, 20971520, 1), row(512, 20971520, 2)].map(rawCsvLine).join(''));
    assert.doesNotMatch(fs.readFileSync(path.join(a, 'samples.csv'), 'utf8'), /^512,5242880,/m, 'the dropped round\'s samples go too');
    assert.match(fs.readFileSync(path.join(b, 'samples.csv'), 'utf8'), /^512,20971520,1,2,/m);
    assert.throws(() => readResumeState(a), /one side of a run of 2 servers; resume them together, from their parent folder: --resume /);
    fs.writeFileSync(path.join(b, 'config.json'), JSON.stringify({ ...CONFIG, ab: { refs: ['a', 'b'], this_ref: 1, seed: 8, parent, order: 'seeded' } }));
    assert.throws(() => readResumeState(parent), /its folders are not the 2 sides of one run \(a, b, seed 7\): found a \(side 1, seed 7\), b \(side 2, seed 8\)/);
  } finally {
    fs.rmSync(parent, { recursive: true, force: true });
  }
});

const fresh = (commit: string | null, over: Record<string, unknown> = {}) => ({
  started_at: '2026-11-25T13:00:00.000Z', command: ['--resume', 'results/x'], suite_version: '0.1.0', suite_git: null,
  server: { kind: 'source', path: '/src/ps', git: commit ? { commit, branch: 'WORKTREE', dirty: false } : null },
  host: { hostname: 'box' }, finished: false, stop_reason: null, ended_at: null, provider_facts: {}, ...over,
});

test('mergeResumedRecord reopens the run and appends this attempt to resumes; same commit, no warning', { timeout: 120_000 }, () => {
  const old = {
    ...CONFIG, finished: false, stop_reason: 'interrupted by SIGINT', ended_at: '2026-11-25T12:00:00.000Z',
    started_at: '2026-11-25T11:00:00.000Z', provider_facts: { 512: { limitEnforced: true } }, host: { hostname: 'box' },
    server: { kind: 'source', path: '/src/ps', git: { commit: 'a'.repeat(40), branch: 'WORKTREE', dirty: false } },
  };
  const { record: config, warnings } = mergeResumedRecord(record(old), record(fresh('a'.repeat(40))));
  assert.deepEqual(warnings, []);
  const c = config;
  assert.equal(c.finished, false);
  assert.equal(c.stop_reason, null);
  assert.equal(c.ended_at, null);
  assert.equal(c.started_at, '2026-11-25T11:00:00.000Z', 'the run keeps its own start');
  assert.deepEqual(c.provider_facts, { 512: { limitEnforced: true } });
  assert.deepEqual(c.matrix, { ...CONFIG.matrix, vm_box: null });
  assert.equal(c.resumes?.length, 1);
  assert.equal(c.resumes?.[0].started_at, '2026-11-25T13:00:00.000Z');
  const again = mergeResumedRecord(config, record(fresh('a'.repeat(40))));
  assert.equal(again.record.resumes?.length, 2, 'a second resume is appended');
});

test('mergeResumedRecord warns on a different server commit and keeps both', { timeout: 120_000 }, () => {
  const old = { ...CONFIG, server: { kind: 'source', path: '/src/ps', git: { commit: 'a'.repeat(40), branch: 'main', dirty: false } } };
  const { record: config, warnings } = mergeResumedRecord(record(old), record(fresh('b'.repeat(40))));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /commit differs: the run started with aaaaaaaaaaaa, this resume runs bbbbbbbbbbbb/);
  assert.equal(config.server.git?.commit, 'a'.repeat(40));
  assert.equal(config.resumes?.[0].server.git?.commit, 'b'.repeat(40));
  const knobs = mergeResumedRecord(record({ ...CONFIG, server: { kind: 'standin', path: null, git: null, standin_env: { STANDIN_THROTTLE_MIBS: '5' } } }),
    record(fresh(null, { server: { kind: 'standin', path: null, git: null, standin_env: {} } })));
  assert.match(knobs.warnings.join('\n'), /stand-in's knobs differ/);
});
