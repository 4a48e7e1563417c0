// Soak: one small case for many iterations on the local provider, with
// UPS_SELF_STATS=1, to show the suite's own RSS and open file descriptors stay
// flat. Prints the first, warmed-up and last figures; exits 1 when fds grow or
// RSS creeps by more than the allowance after warm-up.
//   node --import tsx bench/soak.mts [ITERATIONS=200] [SIZE=1MiB]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SUITE_DIR } from '../lib/paths.ts';
import { parseSelfStats } from '../lib/selfstats.ts';
import { parseRawCsv } from '../lib/results.ts';

const iterations = Number(process.argv[2] ?? 200);
const size = process.argv[3] ?? '1MiB';
/** Node's heap and JIT settle over the first iterations; growth is judged from here on. */
const WARM = Math.min(20, Math.floor(iterations / 4));
const RSS_ALLOWANCE = 16 * 2 ** 20;

const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-soak-'));
const t0 = Date.now();
const child = spawn(path.join(SUITE_DIR, 'run-tests'), ['--sizes', size, '--memory', '512', '--iterations', String(iterations), '--out', out], {
  env: { ...process.env, UPS_SELF_STATS: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
});
let stderr = '';
let stdout = '';
child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
const code: number = await new Promise((resolve) => child.once('close', (c) => resolve(c ?? 1)));
const seconds = (Date.now() - t0) / 1000;
if (code !== 0) {
  process.stderr.write(`run-tests exited ${code}\n${stderr.slice(-2000)}`);
  process.exit(1);
}
const stats = parseSelfStats(stderr);
const rows = parseRawCsv(fs.readFileSync(path.join(stdout.trim().split('\n').at(-1)!, 'raw.csv'), 'utf8'), 'raw.csv');
const mib = (b: number) => (b / 2 ** 20).toFixed(1);
const first = stats[0];
const warm = stats[WARM - 1];
const last = stats.at(-1)!;
const maxRss = Math.max(...stats.map((s) => s.rssBytes));
const fdsSeen = [...new Set(stats.map((s) => s.fds))].sort((a, b) => a - b);
console.log(`${rows.length} iterations of ${size} in ${seconds.toFixed(0)} s, ${rows.filter((r) => r.exit_reason === 'success').length} successful`);
console.log(`RSS MiB: first ${mib(first.rssBytes)}, after ${WARM} ${mib(warm.rssBytes)}, last ${mib(last.rssBytes)}, max ${mib(maxRss)}`);
console.log(`heap used MiB: first ${mib(first.heapUsedBytes)}, after ${WARM} ${mib(warm.heapUsedBytes)}, last ${mib(last.heapUsedBytes)}`);
console.log(`open fds: first ${first.fds}, after ${WARM} ${warm.fds}, last ${last.fds} (values seen: ${fdsSeen.join(', ')})`);
fs.rmSync(out, { recursive: true, force: true });
const creep = last.rssBytes - warm.rssBytes;
if (stats.length !== iterations || last.fds > warm.fds || creep > RSS_ALLOWANCE) {
  console.log(`NOT FLAT: ${stats.length} stats lines, fds ${warm.fds} -> ${last.fds}, RSS +${mib(creep)} MiB after warm-up (allowance ${mib(RSS_ALLOWANCE)})`);
  process.exit(1);
}
console.log('flat');
