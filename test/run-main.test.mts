// run-tests' main(argv, io) called in-process with buffers, as compare-runs'
// is: a quick run, bad input, a missing tool, an interrupted run and its
// resume; and the guest image the run asks for, sized for the matrix.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { main } from '../run-tests.mts';
import { readRunRecord } from '../lib/load-run.ts';
import { DEFAULT_DISK_BYTES, IMAGE_VERSION, imageBytesFor, readGuestImage } from '../lib/providers/image.ts';
import { parseMatrix } from '../lib/matrix.ts';
import { parseRawCsv } from '../lib/results.ts';
import { prepareGuestImage } from '../lib/run.ts';
import { MiB } from '../lib/units.ts';

const GiB = 1024 * MiB;

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-main-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

/** main() with its output in buffers. */
async function runMain(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  return { code, stdout, stderr, lastLine: stdout.trim().split('\n').at(-1) ?? '' };
}

/** Sets environment variables for the duration of `fn`. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(before)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
}

test('main: a quick run in-process writes every row, a finished record and the report, the folder last on stdout', { timeout: 300_000 }, async () => {
  const out = path.join(scratch, 'quick');
  const r = await runMain(['--quick', '--sizes', '1MiB', '--memory', '256', '--iterations', '3', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(path.dirname(r.lastLine), out);
  const rows = parseRawCsv(fs.readFileSync(path.join(r.lastLine, 'raw.csv'), 'utf8'), 'raw.csv');
  assert.deepEqual(rows.map((x) => `${x.iteration} ${x.exit_reason}`), ['1 success', '2 success', '3 success']);
  const record = readRunRecord(r.lastLine)!;
  assert.equal(record.finished, true);
  assert.equal(record.stop_reason, null);
  assert.deepEqual(record.matrix.memory_limits_mb, [256]);
  assert.ok(record.provider_facts['256'], 'the environment\'s facts are recorded');
  assert.match(fs.readFileSync(path.join(r.lastLine, 'report.md'), 'utf8'), /\| 256MB \| 1MiB \|/);
});

test('main: bad input is one "Error:" line and exit 2, and nothing is made', { timeout: 60_000 }, async () => {
  const out = path.join(scratch, 'bad');
  const r = await runMain(['--sizes', '5 potatoes', '--out', out]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^Error: --sizes: .*\n$/);
  assert.equal(r.stdout, '');
  assert.equal(fs.existsSync(out), false);
});

test('main: a provider whose tool is missing exits 1 before making a results folder, naming the Debian package', { timeout: 60_000 }, async () => {
  const out = path.join(scratch, 'no-qemu');
  const empty = fs.mkdtempSync(path.join(scratch, 'path-'));
  // Only this empty folder on PATH: qemu-system-x86_64 and ssh (in /usr/bin) are not found, whether installed or not.
  const r = await withEnv({ PATH: empty }, () => runMain(['--provider', 'qemu', '--quick', '--out', out]));
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^Error: qemu-system-x86_64 not found on PATH: install the Debian package qemu-system-x86 \(apt-get install qemu-system-x86\); ssh not found on PATH: install the Debian package openssh-client/);
  assert.equal(fs.existsSync(out), false, 'no results folder');
});

test('main: an interrupted run keeps its rows and says so; --resume finishes it into the same folder', { timeout: 300_000 }, async () => {
  const out = path.join(scratch, 'interrupted');
  // 8 MiB at 4 MiB/s: each upload takes about 2 s, time enough to interrupt the second.
  const first = withEnv({ STANDIN_THROTTLE_MIBS: '4' }, () => runMain(['--quick', '--sizes', '8MiB', '--memory', '256', '--iterations', '3', '--out', out]));
  const raw = () => {
    const dir = fs.existsSync(out) ? fs.readdirSync(out).map((d) => path.join(out, d))[0] : undefined;
    return dir && fs.existsSync(path.join(dir, 'raw.csv')) ? { dir, rows: parseRawCsv(fs.readFileSync(path.join(dir, 'raw.csv'), 'utf8'), 'raw.csv') } : null;
  };
  for (let i = 0; i < 600 && !(raw()?.rows.length); i++) await new Promise((res) => setTimeout(res, 100));
  assert.ok(raw()?.rows.length, 'the first row was never written');
  // The run's own handler takes the signal, as a Ctrl-C would deliver it.
  process.emit('SIGINT', 'SIGINT');
  const r = await first;
  assert.equal(r.code, 130, r.stderr);
  const dir = r.lastLine;
  const record = readRunRecord(dir)!;
  assert.equal(record.finished, false);
  assert.equal(record.stop_reason, 'interrupted by SIGINT');
  const kept = raw()!.rows.length;
  assert.ok(kept >= 1 && kept < 3, `${kept} rows kept`);
  assert.match(fs.readFileSync(path.join(dir, 'report.md'), 'utf8'), /Run not finished/);

  const again = await runMain(['--resume', dir]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.lastLine, dir);
  assert.match(again.stderr, new RegExp(`resuming: ${kept} iterations already in raw.csv, ${3 - kept} to run`));
  assert.deepEqual(raw()!.rows.map((x) => x.iteration).sort(), [1, 2, 3]);
  const resumed = readRunRecord(dir)!;
  assert.equal(resumed.finished, true);
  assert.equal(resumed.resumes?.length, 1);
  // The resume ran the stand-in with the knobs the run started with.
  assert.deepEqual(resumed.server.standin_env, { STANDIN_THROTTLE_MIBS: '4' });
});

test('a qemu run asks for a guest image sized for its largest file; a cached default-size image is then too small', { timeout: 60_000 }, async () => {
  const m = parseMatrix('sizes: [7GiB, 1MiB]\nmemory_limits: [512]\nprovider: qemu\n', 'matrix.yaml');
  const asked: (number | undefined)[] = [];
  await prepareGuestImage(m, () => {}, async (o) => { asked.push(o?.diskBytes); return null as never; });
  assert.deepEqual(asked, [imageBytesFor(m)]);
  assert.ok(asked[0]! >= 2 * 7 * GiB, `${asked[0]} bytes hold a 7 GiB spool and its store`);
  assert.ok(asked[0]! > DEFAULT_DISK_BYTES);
  // An image of the default size, complete in every other way, does not do: ensureGuestImage rebuilds it.
  const dir = fs.mkdtempSync(path.join(scratch, 'image-'));
  for (const f of ['vmlinux', 'initrd.img', 'disk.qcow2', 'id_ed25519']) fs.writeFileSync(path.join(dir, f), '');
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ image_version: IMAGE_VERSION, disk_virtual_bytes: DEFAULT_DISK_BYTES }));
  assert.ok(await readGuestImage(dir, DEFAULT_DISK_BYTES), 'the fixture is a complete image of the default size');
  assert.equal(await readGuestImage(dir, asked[0]), null);
  // Local and vagrant runs build no image here (vagrant sizes it when it makes its box).
  const local = parseMatrix('sizes: [7GiB]\nmemory_limits: [512]\nprovider: local\n', 'matrix.yaml');
  assert.equal(await prepareGuestImage(local, () => {}, async () => { throw new Error('asked'); }), null);
});
