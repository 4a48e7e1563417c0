// matrix.yaml's judgment: a case's own noise band, or `ignore: true` with a
// reason. Refused when a key is unknown or a selector matches no case (exit 2,
// file:line); recorded in config.json; and in a comparison they change the
// verdict, and only the verdict (golden compare-judged.md against compare.md).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { main as compareMain } from '../compare-runs.mts';
import { main as runTests } from '../run-tests.mts';
import { judgmentFor } from '../lib/stats/judgment.ts';
import { parseMatrix } from '../lib/matrix.ts';
import { readRunRecord } from '../lib/load-run.ts';
import { matrixRecord, parseRunRecord } from '../lib/run-record.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { assertGolden, RUNS } from './golden.mts';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-judgment-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));
const HEAD = 'sizes: [1GiB, 100MiB, 10MiB, 1MiB]\nmemory_limits: [1024, 512, 256]\n';
const JUDGED = `${HEAD}judgment:
  - match: {size: 100MiB, memory_limit: 512}
    ignore: true
    reason: OOM at 512 MB is known (#12)
  - match: {size: 10MiB, memory_limit: 256}
    noise: 25
`;

test('judgment rules: parsed to selectors with a band or a reason; the last matching rule wins', () => {
  const m = parseMatrix(`${JUDGED}  - match: {memory_limit: 256}\n    noise: 5\n`, 'm.yaml');
  assert.deepEqual(m.judgment, [
    { size_bytes: 100 * 2 ** 20, memory_limit_mb: 512, ignore: 'OOM at 512 MB is known (#12)' },
    { size_bytes: 10 * 2 ** 20, memory_limit_mb: 256, noise_pct: 25 },
    { memory_limit_mb: 256, noise_pct: 5 },
  ]);
  const of = (size: number, mem: number) => judgmentFor(m.judgment, { fileSizeBytes: size * 2 ** 20, memoryLimitMb: mem, concurrency: 1 });
  assert.deepEqual(of(100, 512), { noisePct: null, ignored: 'OOM at 512 MB is known (#12)' });
  assert.deepEqual(of(10, 256), { noisePct: 5, ignored: null });
  assert.deepEqual(of(1, 256), { noisePct: 5, ignored: null });
  assert.deepEqual(of(1, 1024), { noisePct: null, ignored: null });
  assert.equal(parseMatrix(HEAD, 'm.yaml').judgment, undefined, 'no rules: nothing recorded');
});

test('judgment refusals name the file, line and key', () => {
  const refused: [string, RegExp][] = [
    [`${HEAD}judgment:\n  - match: {size: 5GiB}\n    noise: 10\n`, /^m\.yaml:4: judgment\[0\]\.match\.size: matches no case: the matrix's sizes \(bytes\) are .* \(got "5GiB"\)$/],
    [`${HEAD}judgment:\n  - match: {memory_limit: 2048}\n    noise: 10\n`, /^m\.yaml:4: judgment\[0\]\.match\.memory_limit: matches no case/],
    [`${HEAD}judgment:\n  - match: {size: 1MiB}\n    tolerance: 10\n`, /^m\.yaml:5: unknown key "judgment\[0\]\.tolerance" \(known: match, noise, ignore, reason\)$/],
    [`${HEAD}judgment:\n  - match: {file: 1MiB}\n    noise: 10\n`, /^m\.yaml:4: unknown key "judgment\[0\]\.match\.file" \(known: size, memory_limit, concurrency\)$/],
    [`${HEAD}judgment:\n  - match: {size: 1MiB}\n    ignore: true\n`, /^m\.yaml:4: judgment\[0\]\.reason: ignore: true needs a reason/],
    [`${HEAD}judgment:\n  - match: {size: 1MiB}\n    noise: 10\n    ignore: true\n    reason: x\n`, /^m\.yaml:4: judgment\[0\]: give either noise \(a percentage\) or ignore: true with a reason/],
    [`${HEAD}judgment:\n  - match: {size: 1MiB}\n    noise: 10%\n`, /^m\.yaml:5: judgment\[0\]\.noise: must be a percentage from 0 to 100 \(got "10%"\)$/],
    [`${HEAD}judgment:\n  - match: {size: 1MiB}\n    ignore: false\n    reason: x\n`, /^m\.yaml:5: judgment\[0\]\.ignore: must be true/],
    [`${HEAD}judgment:\n  - match: {}\n    noise: 1\n`, /^m\.yaml:4: judgment\[0\]\.match: must be a mapping of size, memory_limit, concurrency/],
    [`${HEAD}judgment: {size: 1MiB}\n`, /^m\.yaml:3: judgment: must be a list/],
  ];
  for (const [text, pattern] of refused) assert.throws(() => parseMatrix(text, 'm.yaml'), (e: Error) => pattern.test(e.message), text);
});

test('run-tests refuses a selector that matches nothing: exit 2, one Error line with file:line, no folder made', () => {
  const file = path.join(scratch, 'bad.yaml');
  fs.writeFileSync(file, `${HEAD}judgment:\n  - match: {size: 2MiB, memory_limit: 256}\n    noise: 10\n`);
  const out = path.join(scratch, 'bad-out');
  const r = spawnSync(path.join(SUITE_DIR, 'run-tests'), ['--matrix', file, '--out', out], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr.trim(), new RegExp(`^Error: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4: judgment\\[0\\]\\.match\\.size: matches no case`));
  assert.equal(fs.existsSync(out), false);
});

test('config.json records the rules (and reads them back); a run with them measures as without', async () => {
  const m = parseMatrix(JUDGED, 'm.yaml');
  const rec = matrixRecord(m, null);
  assert.deepEqual(parseRunRecord({ schema: 1, matrix: rec }, 'c.json').matrix.judgment, m.judgment);
  assert.throws(() => parseRunRecord({ schema: 1, matrix: { ...rec, judgment: [{ size_bytes: 1, noise_pct: 5, ignore: 'x' }] } }, 'c.json'),
    /c\.json: matrix\.judgment\[0\]: must have noise_pct or ignore/);
  assert.throws(() => parseRunRecord({ schema: 1, matrix: { ...rec, judgment: [{ size: 1, noise_pct: 5 }] } }, 'c.json'), /matrix\.judgment\[0\]\.size: is not a judgment field/);
  // A real (short) run: the rules land in config.json; the rows are what the matrix asks, whatever they say.
  const file = path.join(scratch, 'm.yaml');
  fs.writeFileSync(file, 'sizes: [1MiB]\nmemory_limits: [512]\niterations: 2\njudgment:\n  - match: {size: 1MiB}\n    ignore: true\n    reason: a test\n');
  let stdout = '';
  let stderr = '';
  const code = await runTests(['--matrix', file, '--out', scratch], { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  assert.equal(code, 0, stderr);
  const dir = stdout.trim().split('\n').at(-1)!;
  assert.deepEqual(readRunRecord(dir)!.matrix.judgment, [{ size_bytes: 2 ** 20, ignore: 'a test' }]);
  assert.equal(fs.readFileSync(path.join(dir, 'raw.csv'), 'utf8').trim().split('\n').length, 1 + 2);
});

test('golden: an ignored case and a per-case noise band change the verdict, and only the verdict, of the fixture comparison', async () => {
  // The candidate fixture with the rules in its config.json, as a run of JUDGED would record them.
  const cand = path.join(scratch, 'cand');
  fs.mkdirSync(cand);
  fs.copyFileSync(path.join(RUNS, 'cand', 'raw.csv'), path.join(cand, 'raw.csv'));
  const config = JSON.parse(fs.readFileSync(path.join(RUNS, 'cand', 'config.json'), 'utf8'));
  config.matrix.judgment = parseMatrix(JUDGED, 'm.yaml').judgment;
  fs.writeFileSync(path.join(cand, 'config.json'), JSON.stringify(config, null, 2));
  const io = { stdout: { write: () => true }, stderr: { write: () => true } };
  assert.equal(await compareMain([path.join(RUNS, 'base'), path.join(RUNS, 'cand'), '--out', path.join(scratch, 'plain')], io), 1);
  assert.equal(await compareMain([path.join(RUNS, 'base'), cand, '--out', path.join(scratch, 'judged')], io), 0, 'the regressions left are ignored or inside their band');
  const plain = fs.readFileSync(path.join(scratch, 'plain', 'compare.md'), 'utf8');
  const judged = fs.readFileSync(path.join(scratch, 'judged', 'compare.md'), 'utf8');
  assertGolden(judged, 'compare-judged');

  // Line by line: a table row may differ only in its verdict cell; the summary only in its counts and verdict lines.
  const a = plain.split('\n');
  const b = judged.split('\n').filter((l) => !l.startsWith('- Ignored (matrix.yaml judgment'));
  assert.equal(b.length, a.length);
  const cells = (l: string) => l.split(' | ');
  const changed: string[] = [];
  a.forEach((l, i) => {
    if (l === b[i]) return;
    changed.push(b[i]);
    if (l.startsWith('| ')) assert.deepEqual(cells(b[i]).slice(0, -1), cells(l).slice(0, -1), `only the verdict cell may change:\n${l}\n${b[i]}`);
    else assert.match(l, /^- (Throughput: faster|Failures: fixed|Verdict: )/, `only verdict lines may change:\n${l}\n${b[i]}`);
  });
  assert.ok(changed.some((l) => /^\| 100MiB \| 512MB \| .* \| ignored: OOM at 512 MB is known \(#12\) \(judged: regressed: 1\/6 vs 0\/6 \(oom_killed\); slower\) \|$/.test(l)), changed.join('\n'));
  assert.ok(changed.some((l) => /^\| 10MiB \| 256MB \| 5 v 5 \| 100 ±2% \| 76\.9 ±2% \| -23\.1% \[-24\.2%, -21\.7%\] \| 0\.040 \| same \(noise ±25%\) \|$/.test(l)), changed.join('\n'));
  assert.ok(changed.includes('- Verdict: improved, nothing regressed'));
  assert.match(judged, /^- Ignored \(matrix\.yaml judgment; measured, not judged\): 100MiB @ 512MB \(OOM at 512 MB is known \(#12\)\)$/m);
});
