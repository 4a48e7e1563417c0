// ./merge-runs through main(): shard folders written from literal rows and
// configs (as run-tests --shard writes them) are merged into one folder, or an
// A/B parent that compare-runs reads; every kind of shard that does not belong
// is refused with its message and exit 2; --allow-missing says what is missing;
// shards from different hosts get their fingerprints side by side in report.md.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { main as compareRuns } from '../compare-runs.mts';
import { main as mergeRuns } from '../merge-runs.mts';
import { parseRawCsv } from '../lib/results.ts';
import type { Matrix } from '../lib/matrix.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { rawCsvHeader, rawCsvLine, type RawRow } from '../lib/results.ts';
import { caseKey } from '../lib/cases.ts';
import { shardCases, shardRecord } from '../lib/shard.ts';
import { assertValidJunit, parseJunit } from './junit-helpers.mts';

const MiB = 2 ** 20;
const matrix: Matrix = {
  sizes: [{ label: '4MiB', bytes: 4 * MiB }, { label: '2MiB', bytes: 2 * MiB }, { label: '1MiB', bytes: MiB }],
  memoryLimitsMb: [512, 256], iterations: 10, warmupIterations: 1, uploadTimeoutSeconds: 60, readinessTimeoutSeconds: 30,
  provider: 'local', server: { kind: 'standin' }, vmCpus: 1, vmBox: null, concurrency: [1],
};
const host = { hostname: 'runner-a', cpu_model: 'Xeon 8370C', cores: 4, kernel: '6.8.0', memory_bytes: 16 * 2 ** 30, machine: 'Microsoft Corporation Virtual Machine', hypervisor: true, ci: { engine: 'github' } };

interface ShardOpts {
  total?: number;
  refs?: { name: string; commit: string; slowdown: number }[];
  host?: Record<string, unknown>;
  /** Changes to the config after it is made. */
  edit?: (c: Record<string, any>) => void;
  /** Drop rows (an interrupted shard). */
  keepRows?: (r: RawRow) => boolean;
}

/** Writes shard k's folder (plain, or an A/B parent with one folder per ref) under `parent`, inside a stamp folder as --out makes. */
function writeShard(parent: string, k: number, o: ShardOpts = {}): string {
  const total = o.total ?? 3;
  const refs = o.refs ?? [];
  const shardDir = path.join(parent, `shard-${k}`);
  const run = path.join(shardDir, '20261201-120000');
  const sides = refs.length ? refs : [{ name: '', commit: '', slowdown: 1 }];
  sides.forEach((side, i) => {
    const dir = side.name ? path.join(run, side.name) : run;
    fs.mkdirSync(dir, { recursive: true });
    const rows = shardCases(matrix, { index: k, total, source: 'x' }, refs.length).map((c): RawRow => {
      const duration = (c.size.bytes / MiB / 100) * side.slowdown * (1 + c.iteration / 100);
      return {
        file_size: c.size.label, memory_limit: `${c.memoryMb}MB`, duration_seconds: duration, peak_memory_bytes: 50 * MiB, http_status: 200,
        exit_reason: 'success', iteration: c.iteration, file_size_bytes: c.size.bytes, memory_limit_mb: c.memoryMb, transfer_seconds: duration / 2,
        processing_seconds: duration / 2, throughput_mib_s: c.size.bytes / MiB / duration, server_peak_rss_bytes: 40 * MiB, sha256_ok: true,
        started_at: `2026-12-01T12:00:${String(c.iteration).padStart(2, '0')}.000Z`, error: '', host_cpu_pressure_pct: 1, failure_phase: null,
        server_cpu_user_seconds: null, server_cpu_system_seconds: null, server_write_bytes: null, data_dir_bytes: null,
        download_ttfb_seconds: null, download_mib_s: null, concurrency: 1, iteration_peak_rss_bytes: null,
      };
    }).filter(o.keepRows ?? (() => true));
    fs.writeFileSync(path.join(dir, 'raw.csv'), rawCsvHeader() + rows.map(rawCsvLine).join(''));
    fs.writeFileSync(path.join(dir, 'failures.log'), '');
    const config: Record<string, any> = {
      suite_version: '0.1.0', suite_git: { commit: 'a'.repeat(40), branch: 'main', dirty: false }, schema: 1, command: [],
      started_at: `2026-12-01T12:0${k}:00.000Z`, ended_at: `2026-12-01T12:0${k}:30.000Z`, finished: true, stop_reason: null, provider: 'local',
      provider_facts: Object.fromEntries(matrix.memoryLimitsMb.map((m) => [String(m), { limitEnforced: true }])),
      server: side.name ? { kind: 'source', path: '/src', git: { commit: side.commit, branch: side.name, dirty: false } } : { kind: 'standin', path: null, git: null, standin_env: {} },
      ...(side.name ? { ab: { refs: refs.map((r) => r.name), this_ref: i, seed: k, parent: run } } : {}),
      matrix: { sizes: matrix.sizes, memory_limits_mb: matrix.memoryLimitsMb, iterations: 10, warmup_iterations: 1, upload_timeout_seconds: 60, readiness_timeout_seconds: 30, vm_cpus: 1, vm_box: null },
      shard: shardRecord(matrix, { index: k, total, source: `--shard ${k}/${total}` }, refs.length),
      host: o.host ?? host,
    };
    o.edit?.(config);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  });
  return shardDir;
}

function capture() {
  let out = '';
  let err = '';
  return { io: { stdout: { write: (s: string) => { out += s; } }, stderr: { write: (s: string) => { err += s; } } }, out: () => out, err: () => err };
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'merge-test-'));
const AB = [{ name: 'main', commit: '1'.repeat(40), slowdown: 1 }, { name: 'branch', commit: '2'.repeat(40), slowdown: 1.5 }];

describe('merge-runs', { timeout: 120_000 }, () => {
  test('three plain shards -> one ordinary results folder: every row once, in run order; report.md lists the shards', async () => {
    const t = tmp();
    const shards = [1, 2, 3].map((k) => writeShard(t, k));
    const c = capture();
    const out = path.join(t, 'merged');
    assert.equal(await mergeRuns([...shards.reverse(), '--out', out], c.io), 0, c.err());
    assert.equal(c.out().trim().split('\n').at(-1), out);
    for (const f of ['raw.csv', 'config.json', 'report.md', 'failures.log', 'throughput.svg']) assert.ok(fs.existsSync(path.join(out, f)), f);
    const rows = parseRawCsv(fs.readFileSync(path.join(out, 'raw.csv'), 'utf8'), 'raw.csv');
    const keys = rows.map((r) => `${caseKey(r)}#${r.iteration}`);
    assert.equal(new Set(keys).size, keys.length, 'no row twice');
    assert.equal(rows.length, 6 * 10);
    assert.deepEqual(rows.map((r) => r.memory_limit_mb), [...rows.map((r) => r.memory_limit_mb)].sort((a, b) => b - a));
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    assert.equal(config.finished, true);
    assert.equal(config.shard, undefined, 'the merged folder is not a shard');
    assert.deepEqual(config.merge.shards.map((s: { index: number }) => s.index), [1, 2, 3]);
    assert.equal(config.started_at, '2026-12-01T12:01:00.000Z');
    assert.equal(config.ended_at, '2026-12-01T12:03:30.000Z');
    assert.equal(config.merge.hosts_differ, false);
    const report = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    assert.match(report, /Merged from 3 of 3 shards/);
    assert.match(report, /\| 2\/3 \| .*@ .*MB/);
    assert.doesNotMatch(report, /Different hosts/);
  });

  test('A/B shards -> a parent with a folder per ref and compare/; compare-runs reads the merged folders; exit is the comparison\'s', async () => {
    const t = tmp();
    const shards = [1, 2, 3].map((k) => writeShard(t, k, { refs: AB }));
    const c = capture();
    const out = path.join(t, 'merged');
    const junit = path.join(t, 'junit.xml');
    assert.equal(await mergeRuns([...shards, '--out', out, '--junit', junit], c.io), 1, `branch is 1.5x slower: exit 1\n${c.err()}`);
    assert.deepEqual(fs.readdirSync(out).sort(), ['branch', 'compare', 'main']);
    // --junit: the merged comparison's verdicts, each of the 6 cases' throughput failed (1.5x slower).
    const xml = fs.readFileSync(junit, 'utf8');
    await assertValidJunit(xml);
    const failed = parseJunit(xml).cases.filter((x) => x.outcome === 'failed').map((x) => x.name).sort();
    assert.deepEqual(failed, ['1MiB', '2MiB', '4MiB'].flatMap((size) => [256, 512].map((mb) => `${size} @ ${mb}MB: Throughput`)));
    assert.match(fs.readFileSync(path.join(out, 'compare', 'compare.md'), 'utf8'), /slower/);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'branch', 'config.json'), 'utf8'));
    assert.deepEqual(cfg.ab, { refs: ['main', 'branch'], this_ref: 1, seed: null, parent: out, order: '' });
    assert.equal(cfg.server.git.commit, '2'.repeat(40));
    const c2 = capture();
    assert.equal(await compareRuns([path.join(out, 'main'), path.join(out, 'branch'), '--out', path.join(t, 'cmp')], c2.io), 1, c2.err());
    assert.match(c2.out(), /slower/);
    assert.equal(c2.err(), '', 'no warning: both merged sides have the same settings');
  });

  test('the real executable: exit 2 and one Error line for shards of different splits', () => {
    const t = tmp();
    const r = spawnSync(path.join(SUITE_DIR, 'merge-runs'), [writeShard(t, 1), writeShard(path.join(t, 'b'), 2, { total: 2 })], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^Error: shard 1\/3 \(.*\) and shard 2\/2 \(.*\) are parts of different splits \(3 and 2 shards\)\n$/);
  });

  const refusals: [string, (t: string) => string[], RegExp][] = [
    ['a folder that is not a shard', (t) => [writeShard(t, 1, { edit: (c) => { delete c.shard; } }), writeShard(t, 2)], /not a shard \(its run had no --shard\)/],
    ['a shard given twice', (t) => [writeShard(t, 1), writeShard(path.join(t, 'again'), 1), writeShard(t, 2), writeShard(t, 3)], /shard 1\/3 given twice: .*shard-1 and .*again\/shard-1/],
    ['another suite version', (t) => [writeShard(t, 1), writeShard(t, 2, { edit: (c) => { c.suite_git.commit = 'b'.repeat(40); } }), writeShard(t, 3)],
      /shard 2\/3 \(.*\) ran another suite version than shard 1\/3 \(.*\): 0\.1\.0 at bbbbbbbbbbbb vs 0\.1\.0 at aaaaaaaaaaaa/],
    ['another matrix', (t) => [writeShard(t, 1), writeShard(t, 2, { edit: (c) => { c.matrix.iterations = 3; } }), writeShard(t, 3)],
      /shard 2\/3 .* ran another matrix than shard 1\/3 .*: matrix\.iterations 3 vs 10/],
    ['another provider', (t) => [writeShard(t, 1), writeShard(t, 2, { edit: (c) => { c.provider = 'qemu'; } }), writeShard(t, 3)],
      /ran another matrix than .*: provider "qemu" vs "local"/],
    ['other refs', (t) => [writeShard(t, 1, { refs: AB }), writeShard(t, 2, { refs: [AB[0], { ...AB[1], name: 'other' }] }), writeShard(t, 3, { refs: AB })],
      /shard 2\/3 .* ran other refs than shard 1\/3 .*: main and other vs main and branch/],
    ['another commit of a ref', (t) => [writeShard(t, 1, { refs: AB }), writeShard(t, 2, { refs: [AB[0], { ...AB[1], commit: '3'.repeat(40) }] }), writeShard(t, 3, { refs: AB })],
      /ran other refs or commits than shard 1\/3 .*: branch commit 333333333333 vs commit 222222222222/],
    ['rows outside the shard\'s cases', (t) => [writeShard(t, 1), writeShard(t, 2, { edit: (c) => { c.shard.cases = c.shard.cases.slice(1); } }), writeShard(t, 3)],
      /shard 2\/3 .* has rows for .* @ .*MB, a case shard 2\/3 was not assigned/],
    ['overlapping cases', (t) => [writeShard(t, 1), writeShard(t, 2, { edit: (c) => { c.shard.cases.push(caseKey({ bytes: 4 * MiB, memoryMb: 512, concurrency: 1 })); } }), writeShard(t, 3)],
      /overlapping cases: 4MiB @ 512MB is in both shard 1\/3 .* and shard 2\/3/],
    ['a missing shard', (t) => [writeShard(t, 1), writeShard(t, 3)],
      /missing shard 2\/3; missing cases: .* @ .*MB \(shard not given\).*--allow-missing/],
    ['an unfinished shard', (t) => [writeShard(t, 1), writeShard(t, 2, { keepRows: (r) => r.iteration <= 2, edit: (c) => { c.finished = false; c.stop_reason = 'interrupted by SIGINT'; } }), writeShard(t, 3)],
      /missing cases: .* @ .*MB: 2 of 10 iterations \(shard 2\/3 .* did not finish: interrupted by SIGINT\)/],
    ['one ref\'s folder instead of its parent', (t) => [path.join(writeShard(t, 1, { refs: AB }), '20261201-120000', 'main')],
      /one ref's folder of a two-ref run; give its parent folder/],
    ['a folder holding two runs', (t) => { const d = writeShard(t, 1); fs.cpSync(path.join(d, '20261201-120000'), path.join(d, '20261201-130000'), { recursive: true }); return [d]; },
      /holds 2 runs \(20261201-120000, 20261201-130000\): give the one that is the shard/],
  ];
  for (const [what, make, message] of refusals) {
    test(`refuses ${what}: exit 2, the reason`, async () => {
      const t = tmp();
      const c = capture();
      const out = path.join(t, 'merged');
      assert.equal(await mergeRuns([...make(t), '--out', out], c.io), 2, c.err());
      assert.match(c.err(), message);
      assert.ok(!fs.existsSync(out), 'nothing written');
    });
  }

  test('adaptive shards: a case its shard decided early is whole with fewer rows; the merged record keeps every stop', async () => {
    const t = tmp();
    const shards = [1, 2, 3].map((k) => writeShard(t, k, {
      refs: AB, keepRows: (r) => r.iteration <= 7,
      edit: (c) => { c.ab.stops = c.shard.cases.map((id: string) => ({ case: id, rounds: 6, state: 'decided', verdicts: ['slower'] })); },
    }));
    const c = capture();
    const out = path.join(t, 'merged');
    // Merged (6 pairs a case cannot be significant over 6 cases: inconclusive, exit 0), not refused (2).
    assert.equal(await mergeRuns([...shards, '--out', out], c.io), 0, c.err());
    assert.doesNotMatch(c.err(), /missing/);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'branch', 'config.json'), 'utf8'));
    assert.equal(cfg.ab.stops.length, 6, 'the stops of all three shards');
    // Without the stops, the same rows are cases cut short.
    const cut = [1, 2, 3].map((k) => writeShard(path.join(t, 'cut'), k, { refs: AB, keepRows: (r) => r.iteration <= 7 }));
    const c2 = capture();
    assert.equal(await mergeRuns([...cut, '--out', path.join(t, 'merged2')], c2.io), 2);
    assert.match(c2.err(), /missing cases: .*: 7 of 10 iterations/);
  });

  test('--allow-missing: merges the shards given, names the missing cases on stderr, in report.md and config.json (finished: false)', async () => {
    const t = tmp();
    const c = capture();
    const out = path.join(t, 'merged');
    assert.equal(await mergeRuns([writeShard(t, 1), writeShard(t, 3), '--allow-missing', '--out', out], c.io), 0, c.err());
    assert.match(c.err(), /Warning: missing: .* @ .*MB \(shard not given\)/);
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    assert.equal(config.finished, false);
    assert.deepEqual(config.merge.missing_shards, [2]);
    assert.match(config.stop_reason, /^merged without \d case\(s\)/);
    const report = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    assert.match(report, /Run not finished/);
    assert.match(report, /\*\*Missing\*\* \(merged with --allow-missing; shards not given: 2\/3\)/);
  });

  test('shards on different hosts: report.md says so, with the fingerprints side by side', async () => {
    const t = tmp();
    const other = { ...host, hostname: 'runner-b', cpu_model: 'EPYC 7763', kernel: '6.5.0' };
    const c = capture();
    const out = path.join(t, 'merged');
    assert.equal(await mergeRuns([writeShard(t, 1), writeShard(t, 2, { host: other }), writeShard(t, 3), '--out', out], c.io), 0, c.err());
    assert.match(c.err(), /ran on different hosts/);
    const report = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    assert.match(report, /\*\*Different hosts\*\*: the shards ran on 2 hosts/);
    assert.match(report, /\| \| shard 1 \| shard 2 \| shard 3 \|/);
    assert.match(report, /\| CPU \| Xeon 8370C \| EPYC 7763 \| Xeon 8370C \|/);
    assert.match(report, /\| kernel \| 6\.8\.0 \| 6\.5\.0 \| 6\.8\.0 \|/);
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).merge.hosts_differ, true);
  });

  test('--out must be new or empty', async () => {
    const t = tmp();
    const out = path.join(t, 'merged');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'x'), '');
    const c = capture();
    assert.equal(await mergeRuns([writeShard(t, 1), writeShard(t, 2), writeShard(t, 3), '--out', out], c.io), 2);
    assert.match(c.err(), /not empty; give a new or empty folder/);
  });
});
