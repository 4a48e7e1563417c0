// Every bound (lib/bounds.ts) is one definition shared by matrix.yaml and
// config.json: its limit values (min and max) go matrix.yaml -> run-tests'
// options -> config.json -> --resume and come back equal, and one beyond either
// limit is refused by both formats, each message naming the key and the bound.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { BOUNDS, type Bound } from '../lib/bounds.ts';
import { InputError } from '../lib/errors.ts';
import { parseMatrix, type Matrix } from '../lib/matrix.ts';
import { parseOptions } from '../lib/options.ts';
import { matrixRecord, newRunRecord } from '../lib/run-record.ts';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-bounds-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

/** Per bound: matrix.yaml with the value n, the YAML key a message names, and the config.json fields that carry it. */
const WHERE: Record<keyof typeof BOUNDS, { yaml: (n: number) => string; key: string; json: string[] }> = {
  size_bytes: { yaml: (n) => `sizes: [${n}B]\nmemory_limits: [256]\n`, key: 'sizes', json: ['sizes', '0', 'bytes'] },
  memory_mb: { yaml: (n) => `sizes: [1MiB]\nmemory_limits: [${n}]\n`, key: 'memory_limits', json: ['memory_limits_mb', '0'] },
  iterations: { yaml: (n) => `sizes: [1MiB]\nmemory_limits: [256]\niterations: ${n}\n`, key: 'iterations', json: ['iterations'] },
  // The most iterations, so that only the warm-up's own bound (not "less than iterations") is at stake.
  warmup_iterations: { yaml: (n) => `sizes: [1MiB]\nmemory_limits: [256]\niterations: 1000\nwarmup_iterations: ${n}\n`, key: 'warmup_iterations', json: ['warmup_iterations'] },
  concurrency: { yaml: (n) => `sizes: [1MiB]\nmemory_limits: [256]\nconcurrency: [${n}]\n`, key: 'concurrency', json: ['concurrency', '0'] },
  timeout_seconds: {
    yaml: (n) => `sizes: [1MiB]\nmemory_limits: [256]\ntimeouts:\n  upload_seconds: ${n}\n  readiness_seconds: ${n}\n`,
    key: 'timeouts.upload_seconds', json: ['upload_timeout_seconds'],
  },
  vm_cpus: { yaml: (n) => `sizes: [1MiB]\nmemory_limits: [256]\nprovider: qemu\nvm:\n  cpus: ${n}\n`, key: 'vm.cpus', json: ['vm_cpus'] },
};

let runs = 0;
/** matrix.yaml through run-tests' options, recorded as config.json the way a run writes it; the folder. */
function recordedRun(yaml: string): { matrix: Matrix; dir: string } {
  const dir = path.join(scratch, `run-${++runs}`);
  fs.mkdirSync(dir);
  const file = path.join(dir, 'matrix.yaml');
  fs.writeFileSync(file, yaml);
  const o = parseOptions(['--matrix', file]);
  assert.ok(o !== 'help');
  const record = newRunRecord({
    suite_version: '0.1.0', suite_git: null, command: ['--matrix', file], matrix_file: file, started_at: '2026-12-06T21:00:00.000Z',
    provider: o.matrix.provider, server: { kind: 'standin', path: null, git: null }, matrix: matrixRecord(o.matrix, o.matrix.vmBox),
    host: { hostname: 'h', cpu_model: 'c', cores: 2, kernel: 'k', memory_bytes: 1 },
  });
  fs.writeFileSync(path.join(dir, 'config.json'), `${JSON.stringify(record, null, 2)}\n`);
  return { matrix: o.matrix, dir };
}
const resumed = (dir: string) => {
  const o = parseOptions(['--resume', dir]);
  assert.ok(o !== 'help');
  return o.matrix;
};
const refused = (f: () => unknown, pattern: RegExp, what: string) =>
  assert.throws(f, (e: Error) => e instanceof InputError && pattern.test(e.message), what);
const re = (s: string) => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

test('the table covers every bound', () => {
  assert.deepEqual(Object.keys(WHERE).sort(), Object.keys(BOUNDS).sort());
});

for (const [name, b] of Object.entries(BOUNDS) as [keyof typeof BOUNDS, Bound][]) {
  const w = WHERE[name];
  test(`${name}: ${b.min} and ${b.max} round-trip matrix.yaml -> config.json -> --resume; ${b.min - 1} and ${b.max + 1} are refused by both`, () => {
    for (const n of [b.min, b.max]) {
      const { matrix, dir } = recordedRun(w.yaml(n));
      // The value really is in the matrix (not a default that happens to match).
      const recorded = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).matrix;
      assert.equal(w.json.reduce((v, k) => v[k], recorded), n, `${name} ${n} in config.json`);
      assert.deepEqual(resumed(dir), matrix, `${name} ${n}`);
    }
    for (const n of [b.min - 1, b.max + 1]) {
      // matrix.yaml: the line, the key, the value, and the bound.
      const why = n > b.max ? re(b.over) : /not a (positive )?whole number|at least 1 byte/;
      refused(() => parseMatrix(w.yaml(n), 'm.yaml'), new RegExp(`^m\\.yaml:\\d+: ${re(w.key).source}: ${why.source}.* \\(got "?${n}B?"?\\)$`), `matrix.yaml ${name} ${n}`);
      // config.json: a record holding the value is refused by --resume, naming the file, the field and the range.
      const { dir } = recordedRun(w.yaml(n > b.max ? b.max : b.min));
      const file = path.join(dir, 'config.json');
      const json = JSON.parse(fs.readFileSync(file, 'utf8'));
      const last = w.json.length - 1;
      w.json.slice(0, last).reduce((v, k) => v[k], json.matrix)[w.json[last]] = n;
      fs.writeFileSync(file, JSON.stringify(json));
      const field = `matrix.${w.json.map((k) => (/^\d+$/.test(k) ? `[${k}]` : k)).join('.').replace(/\.\[/g, '[')}`;
      refused(() => resumed(dir), re(`${file}: ${field}: must be a whole number from ${b.min} to ${b.max} (got ${n})`), `config.json ${name} ${n}`);
    }
  });
}

test('vm.cpus above the bound: refused by matrix.yaml, not only when its run is read back (the bug: 300 ran, then --resume refused it)', () => {
  refused(() => parseMatrix('sizes: [1MiB]\nmemory_limits: [256]\nvm:\n  cpus: 300\n', 'm.yaml'),
    /^m\.yaml:4: vm\.cpus: at most 255 vCPUs .*\(got 300\)$/, 'vm.cpus 300');
});
