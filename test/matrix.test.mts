// matrix.yaml validation (each kind of error names key, value and line), CLI
// overrides, and the order cases run in.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_THRESHOLDS, iterationsNeeded } from '../lib/stats/compare.ts';
import { InputError } from '../lib/errors.ts';
import { expandCases, loadMatrixFile, parseMatrix } from '../lib/matrix.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { parseOptions } from '../lib/options.ts';

const GOOD = `sizes:
  - 1GiB
  - 100MiB
memory_limits: [256, 1024]
iterations: 2
`;

const bad = (text: string, pattern: RegExp) => {
  assert.throws(() => parseMatrix(text, 'm.yaml'), (e: Error) => {
    assert.ok(e instanceof InputError, `expected InputError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
};

test('a valid matrix parses with defaults', { timeout: 60_000 }, () => {
  const m = parseMatrix(GOOD, 'm.yaml');
  assert.deepEqual(m.sizes, [{ label: '1GiB', bytes: 1024 ** 3 }, { label: '100MiB', bytes: 100 * 1024 ** 2 }]);
  assert.deepEqual(m.memoryLimitsMb, [256, 1024]);
  assert.equal(m.iterations, 2);
  assert.equal(m.warmupIterations, 1);
  assert.equal(m.provider, 'local');
  assert.deepEqual(m.server, { kind: 'standin' });
  assert.equal(m.uploadTimeoutSeconds, 1800);
  assert.equal(m.vmBox, null);
  assert.equal(parseMatrix(`${GOOD}vm:\n  cpus: 2\n  box: debian/bookworm64\n`, 'm.yaml').vmBox, 'debian/bookworm64');
});

test('the shipped matrix.yaml holds the seed matrix', { timeout: 60_000 }, () => {
  const m = loadMatrixFile(path.join(SUITE_DIR, 'matrix.yaml'));
  assert.deepEqual(m.sizes.map((s) => s.label), ['5GiB', '2GiB', '1GiB', '500MiB', '100MiB']);
  assert.deepEqual(m.memoryLimitsMb, [2048, 1024, 512, 256]);
});

test('the shipped matrix.yaml, and a matrix that gives no iterations, run enough for compare-runs to call a change', { timeout: 60_000 }, () => {
  const shipped = loadMatrixFile(path.join(SUITE_DIR, 'matrix.yaml'));
  const fallback = parseMatrix(GOOD.replace('iterations: 2\n', ''), 'm.yaml');
  for (const m of [shipped, fallback]) {
    // 5 with 1 warm-up: 4 v 4 measured can reach p = 0.029; 3 with 1 warm-up (2 v 2) never gets below 0.333.
    assert.equal(iterationsNeeded(DEFAULT_THRESHOLDS.alpha, m.warmupIterations), 5);
    assert.equal(m.iterations, 5);
  }
});

test('each kind of invalid matrix names the key, the value and the line', { timeout: 60_000 }, () => {
  bad(`${GOOD}colour: red\n`, /^m\.yaml:6: unknown key "colour"/);
  bad(GOOD.replace('100MiB', '100XB'), /^m\.yaml:3: sizes: unknown unit "XB" .*\(got "100XB"\)/);
  bad(GOOD.replace('100MiB', '100Mb'), /^m\.yaml:3: sizes: unknown unit "Mb"/);
  bad('sizes: []\nmemory_limits: [256]\n', /^m\.yaml:1: sizes: must not be empty/);
  bad('sizes: [1MiB]\nmemory_limits: []\n', /^m\.yaml:2: memory_limits: must not be empty/);
  bad(GOOD.replace('iterations: 2', 'iterations: 0'), /^m\.yaml:5: iterations: not a positive whole number.*\(got 0\)/);
  bad(GOOD.replace('[256, 1024]', '[256, -1]'), /^m\.yaml:4: memory_limits: not a positive/);
  bad(`${GOOD}provider: docker\n`, /^m\.yaml:6: provider: must be one of local, qemu, vagrant \(got "docker"\)/);
  bad(`${GOOD}timeouts:\n  upload_secs: 5\n`, /^m\.yaml:7: unknown key "timeouts\.upload_secs"/);
  bad(`${GOOD}timeouts:\n  upload_seconds: -5\n`, /^m\.yaml:7: timeouts\.upload_seconds: not a positive/);
  bad(`${GOOD}server: picoshare\n`, /^m\.yaml:6: server: must be "standin"/);
  bad(`${GOOD}server:\n  source: ../ps\n  build: [go, build]\n`, /server\.build: must contain \{out\}/);
  bad('sizes: 1GiB\nmemory_limits: [256]\n', /^m\.yaml:1: sizes: must be a list/);
  bad('sizes: [1GiB\n', /^m\.yaml:\d+: invalid YAML/);
  bad(`${GOOD}vm:\n  box: 12\n`, /^m\.yaml:7: vm\.box: must be a Vagrant box name/);
  bad(`${GOOD}vm:\n  disk: 10\n`, /^m\.yaml:7: unknown key "vm\.disk" \(known: cpus, box\)/);
  // A case is (size, memory, iteration): the same size or limit twice would make two cases one.
  bad('sizes: [1MiB, 2MiB, 1048576B]\nmemory_limits: [256]\n', /^m\.yaml:1: sizes: the same size as an earlier entry \(1048576 bytes\).*\(got "1048576B"\)/);
  bad('sizes: [1MiB]\nmemory_limits: [256, 512, 256]\n', /^m\.yaml:2: memory_limits: given twice/);
  // Warm-up is never measured: as many warm-ups as iterations would measure nothing, also at 1.
  bad('sizes: [1MiB]\nmemory_limits: [256]\niterations: 1\nwarmup_iterations: 1\n', /^m\.yaml:4: warmup_iterations: must be less than iterations \(1\).*\(got 1\)/);
  bad('sizes: [1MiB]\nmemory_limits: [256]\niterations: 3\nwarmup_iterations: 3\n', /^m\.yaml:4: warmup_iterations: must be less than iterations \(3\)/);
  // Node's timers fire at once beyond 2^31-1 ms: a huge timeout must not become no timeout.
  bad(`${GOOD}timeouts:\n  upload_seconds: 2200000\n`, /^m\.yaml:7: timeouts\.upload_seconds: must be at most 500000 seconds \(got 2200000\)/);
  bad(`${GOOD}timeouts:\n  readiness_seconds: 5000000\n`, /^m\.yaml:7: timeouts\.readiness_seconds: must be at most 500000/);
});

test('anchors and aliases resolve to their values; an error in an aliased value names the alias\'s line; merge keys are refused by name', { timeout: 60_000 }, () => {
  const m = parseMatrix(`sizes: [1MiB]
memory_limits: &m [256, 512]
timeouts: {upload_seconds: &u 60, readiness_seconds: *u}
`, 'm.yaml');
  assert.deepEqual(m.memoryLimitsMb, [256, 512]);
  assert.equal(m.readinessTimeoutSeconds, 60);
  // The line the value is written on: the alias's target.
  bad('sizes: [1MiB]\nmemory_limits: &m [256]\nconcurrency: *m\n', /^m\.yaml:2: concurrency: .*64.* \(got 256\)$/);
  bad('sizes: [1MiB]\nmemory_limits: [256]\ntimeouts:\n  upload_seconds: &u 0\n  readiness_seconds: *u\n', /^m\.yaml:4: timeouts\.upload_seconds: /);
  bad('sizes: [1MiB]\nmemory_limits: [256]\nconcurrency: *nope\n', /^m\.yaml:3: alias \*nope names no anchor above it$/);
  bad('sizes: [1MiB]\nmemory_limits: [256]\nvm: &v {cpus: 2}\ntimeouts:\n  <<: *v\n', /^m\.yaml:5: "<<": YAML merge keys are not supported/);
});

test('server.workdir: the folder a prebuilt binary runs in, resolved against the matrix file; not with source', { timeout: 60_000 }, () => {
  const m = parseMatrix(`${GOOD}server:\n  binary: ../bin/ps\n  workdir: ../ps-1.1.8\n`, '/x/y/m.yaml');
  assert.deepEqual(m.server, { kind: 'binary', binary: '/x/bin/ps', workdir: '/x/ps-1.1.8' });
  assert.throws(() => parseMatrix(`${GOOD}server:\n  source: ../ps\n  workdir: ../t\n`, 'm.yaml'),
    /^InputError: m\.yaml:8: server\.workdir: only with server\.binary: a server built from source runs in its own tree \(got "\.\.\/t"\)$/);
  assert.throws(() => parseMatrix(`${GOOD}server:\n  binary: ../ps\n  workdir: ""\n`, 'm.yaml'), /^InputError: m\.yaml:8: server\.workdir: must be a non-empty path/);
});

test('server source and binary resolve against the matrix file', { timeout: 60_000 }, () => {
  const m = parseMatrix(`${GOOD}server:\n  source: ../ps\n`, '/x/y/m.yaml');
  assert.deepEqual(m.server, { kind: 'source', source: '/x/ps', build: ['CGO_ENABLED=1', 'go', 'build', '-o', '{out}', './cmd/picoshare'] });
});

test('cases run memory largest first, sizes largest first, then iterations', { timeout: 60_000 }, () => {
  const m = parseMatrix(GOOD.replace('iterations: 2', 'iterations: 2'), 'm.yaml');
  const order = expandCases(m).map((c) => `${c.memoryMb}/${c.size.label}/${c.iteration}`);
  assert.deepEqual(order, [
    '1024/1GiB/1', '1024/1GiB/2', '1024/100MiB/1', '1024/100MiB/2',
    '256/1GiB/1', '256/1GiB/2', '256/100MiB/1', '256/100MiB/2',
  ]);
});

test('CLI flags override the file and are validated the same way', { timeout: 60_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-matrix-'));
  const file = path.join(dir, 'm.yaml');
  fs.writeFileSync(file, GOOD);
  const o = parseOptions(['--matrix', file, '--sizes', '10MiB,1KB', '--memory', '512', '--iterations', '4', '--provider', 'qemu']);
  assert.notEqual(o, 'help');
  if (o === 'help') return;
  assert.deepEqual(o.matrix.sizes.map((s) => s.bytes), [10485760, 1000]);
  assert.deepEqual(o.matrix.memoryLimitsMb, [512]);
  assert.equal(o.matrix.iterations, 4);
  assert.equal(o.matrix.provider, 'qemu');
  const quick = parseOptions(['--matrix', file, '--quick']);
  assert.ok(quick !== 'help' && quick.matrix.server.kind === 'standin' && quick.matrix.sizes.length === 2);
  // --quick is the local provider even when the file names a VM one; --provider still picks.
  const vmFile = path.join(dir, 'vm.yaml');
  fs.writeFileSync(vmFile, `${GOOD}provider: qemu\nwarmup_iterations: 0\n`);
  const quickVm = parseOptions(['--matrix', vmFile, '--quick']);
  assert.ok(quickVm !== 'help' && quickVm.matrix.provider === 'local', 'quick on a qemu matrix');
  const quickQemu = parseOptions(['--matrix', vmFile, '--quick', '--provider', 'qemu']);
  assert.ok(quickQemu !== 'help' && quickQemu.matrix.provider === 'qemu');
  // --iterations keeps the file's warm-up while something is left to measure.
  fs.writeFileSync(vmFile, `${GOOD.replace('iterations: 2', 'iterations: 6')}warmup_iterations: 2\n`);
  const four = parseOptions(['--matrix', vmFile, '--iterations', '4']);
  assert.ok(four !== 'help' && four.matrix.warmupIterations === 2, `warm-up ${four !== 'help' && four.matrix.warmupIterations}`);
  const one = parseOptions(['--matrix', vmFile, '--iterations', '1']);
  assert.ok(one !== 'help' && one.matrix.warmupIterations === 0);
  for (const [args, pattern] of [
    [['--sizes', '10XB'], /--sizes: unknown unit "XB"/],
    [['--sizes', ','], /--sizes: empty list/],
    [['--memory', '0'], /--memory: not a positive/],
    [['--iterations', 'two'], /--iterations: not a positive/],
    [['--provider', 'docker'], /--provider: must be one of local, qemu, vagrant \(got "docker"\)/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
    [['--sizes', '-1MiB'], /^--sizes needs a value, but is followed by "-1MiB", which starts with "-" and is read as an option \(if that is the value, write --sizes=-1MiB\)$/],
    [['--sizes', '1MiB', '--ref'], /^--ref needs a value, and nothing follows it$/],
    [['--ref', '--binary', 'x'], /^--ref needs a value, but is followed by the option --binary$/],
    [['--sizes', '1MiB,1048576B'], /--sizes: 1048576B is the same as an earlier entry/],
    [['--memory', '256,512,256'], /--memory: 256 is the same as an earlier entry/],
    [['--sizes', '1MiB', '--sizes', '2MiB'], /--sizes given twice: give it once \(a comma-separated list/],
    [['--iterations', '2', '--iterations=3'], /--iterations given twice/],
    [['--matrix', file], /--matrix given twice/],
  ] as [string[], RegExp][]) {
    assert.throws(() => parseOptions(['--matrix', file, ...args]), (e: Error) => e instanceof InputError && pattern.test(e.message), args.join(' '));
  }
  assert.throws(() => parseOptions(['--matrix', path.join(dir, 'missing.yaml')]), (e: Error) => e instanceof InputError && /cannot read matrix file .*missing\.yaml: ENOENT/.test(e.message));
});

test('the real executable exits 2 with one Error line, before anything starts', { timeout: 60_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-matrix-'));
  fs.writeFileSync(path.join(dir, 'm.yaml'), `${GOOD}provider: docker\n`);
  const r = spawnSync(path.join(SUITE_DIR, 'run-tests'), ['--matrix', path.join(dir, 'm.yaml'), '--out', dir], { cwd: os.tmpdir(), encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), `Error: ${path.join(dir, 'm.yaml')}:6: provider: must be one of local, qemu, vagrant (got "docker")`);
  assert.deepEqual(fs.readdirSync(dir), ['m.yaml'], 'no results folder was made');
  const help = spawnSync(path.join(SUITE_DIR, 'run-tests'), ['--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--sizes LIST/);
  assert.match(help.stdout, /Exit status: 0/);
});

test('an --out that cannot be made is exit 2 with one Error line (also under /proc, where a recursive mkdir never returns)', { timeout: 60_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-out-'));
  fs.writeFileSync(path.join(dir, 'a-file'), '');
  for (const [out, why] of [[path.join(dir, 'a-file', 'x'), 'ENOTDIR'], ['/proc/ups-no-such-dir', 'ENOENT']]) {
    const r = spawnSync(path.join(SUITE_DIR, 'run-tests'), ['--sizes', '1MiB', '--memory', '256', '--iterations', '1', '--out', out],
      { cwd: os.tmpdir(), encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, `${out}: ${r.error ?? r.stderr}`);
    assert.match(r.stderr, new RegExp(`^Error: cannot create the output folder ${out}: ${why}: [^\\n]* at `, 'm'));
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
