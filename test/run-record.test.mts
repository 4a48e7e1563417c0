// config.json's one loader: a record survives writing and reading back, older
// records (fields added since, or missing) load with defaults, and a record
// whose values make no sense is refused naming the file and the field, as
// matrix.yaml is: through compare-runs and --resume alike (exit 2).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { main as compareRuns } from '../compare-runs.mts';
import { main as runTests } from '../run-tests.mts';
import { parseMatrix } from '../lib/matrix.ts';
import { rawCsvHeader, rawCsvLine } from '../lib/results.ts';
import { matrixFromRecord, matrixRecord, newRunRecord, parseRunRecord } from '../lib/run-record.ts';
import { row } from './raw-row.mts';
import { DEFAULT_NOISE_CUTS } from '../lib/noise-cuts.ts';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-record-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

const buffers = () => {
  const io = { out: '', err: '', stdout: { write: (s: string) => (io.out += s) }, stderr: { write: (s: string) => (io.err += s) } };
  return io;
};

test('a record written as JSON reads back equal, and gives back the matrix it was built from', () => {
  const m = parseMatrix('sizes: [5MiB, 1GB]\nmemory_limits: [256, 512]\niterations: 4\nprovider: qemu\nvm: {cpus: 2}\n', 'matrix.yaml');
  const record = newRunRecord({
    suite_version: '0.1.0', suite_git: { commit: 'a'.repeat(40), branch: 'main', dirty: false }, command: ['--quick'],
    matrix_file: '/x/matrix.yaml', started_at: '2026-12-02T05:00:00.000Z', provider: m.provider,
    server: { kind: 'standin', path: null, git: null, standin_env: { STANDIN_THROTTLE_MIBS: '4' } },
    matrix: matrixRecord(m, null), host: { hostname: 'h', cpu_model: 'c', cores: 2, kernel: 'k', memory_bytes: 1 },
  });
  record.provider_facts['256'] = { accel: 'tcg', timeout_factor: 4 };
  const back = parseRunRecord(JSON.parse(JSON.stringify(record)), 'config.json');
  assert.deepEqual(back, record);
  assert.deepEqual(matrixFromRecord(back, 'config.json'), { ...m, server: { kind: 'standin' }, noiseCuts: DEFAULT_NOISE_CUTS });
});

test('an older record loads: missing fields get defaults, a missing warm-up is 1 of a case with more than one', () => {
  const r = parseRunRecord({ provider: 'local', matrix: { sizes: [{ label: '1MiB', bytes: 1048576 }], memory_limits_mb: [256], iterations: 3 } }, 'old/config.json');
  assert.equal(r.matrix.warmup_iterations, 1);
  assert.equal(r.matrix.upload_timeout_seconds, 1800);
  assert.equal(r.matrix.vm_cpus, 1);
  assert.equal(r.finished, true, 'a record from before runs could be cut short finished');
  assert.deepEqual(r.server, { kind: 'standin', path: null, git: null });
  assert.equal(parseRunRecord({}, 'empty/config.json').matrix.sizes.length, 0);
});

test('a record whose values make no sense is refused with the file and the field', () => {
  const cases: [object, RegExp][] = [
    [{ matrix: { memory_limits_mb: [0, -5] } }, /c\.json: matrix\.memory_limits_mb\[0\]: must be a whole number from 1 to 1048576 \(got 0\)$/],
    [{ matrix: { sizes: 'lots' } }, /c\.json: matrix\.sizes: must be a list of \{label, bytes\} \(got "lots"\)$/],
    [{ matrix: { sizes: [{ label: '1.25B', bytes: 1.25 }] } }, /matrix\.sizes\[0\]\.bytes: must be a whole number/],
    [{ matrix: { iterations: 4, warmup_iterations: 4 } }, /matrix\.warmup_iterations: must be a whole number from 0 to 3 \(got 4\)/],
    [{ matrix: { upload_timeout_seconds: 1e12 } }, /matrix\.upload_timeout_seconds: must be a whole number from 1 to 500000/],
    [{ provider: 'docker' }, /provider: must be one of local, qemu, vagrant \(got "docker"\)/],
    [{ server: { kind: 'standin', standin_env: { STANDIN_STATUS: 500 } } }, /server\.standin_env\.STANDIN_STATUS: must be text \(got 500\)/],
    [{ schema: 2 }, /unknown schema 2/],
    [[1, 2], /\(top level\): expected a JSON object/],
  ];
  for (const [json, want] of cases) assert.throws(() => parseRunRecord(json, 'c.json'), want, JSON.stringify(json));
});

test('compare-runs and --resume refuse such a record: exit 2, one line naming the file and the field', { timeout: 60_000 }, async () => {
  const dir = path.join(scratch, 'bad');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'raw.csv'), rawCsvHeader() + rawCsvLine(row({ iteration: 1 })));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ finished: false, provider: 'local', matrix: { sizes: [{ label: '10MiB', bytes: 10485760 }], memory_limits_mb: [0, -5], iterations: 2 } }));
  const twin = path.join(scratch, 'twin');
  fs.cpSync(dir, twin, { recursive: true });
  const c = buffers();
  assert.equal(await compareRuns([twin, dir, '--out', path.join(scratch, 'cmp')], c), 2);
  assert.match(c.err, /^Error: .*(bad|twin)\/config\.json: matrix\.memory_limits_mb\[0\]: must be a whole number from 1 to 1048576 \(got 0\)\n$/);
  const r = buffers();
  assert.equal(await runTests(['--resume', dir], r), 2);
  assert.match(r.err, /^Error: .*bad\/config\.json: matrix\.memory_limits_mb\[0\]: must be a whole number/m);
  assert.equal(r.out, '');
});
