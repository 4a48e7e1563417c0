// Adaptive rounds: the bookkeeping on literal rows (when a case is judged,
// stopped, or left to run on), the option rules, and the real thing: two
// stand-ins as --binary, one slowed, interleaved until the case is decided.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { main } from '../run-tests.mts';
import { AdaptiveRounds } from '../lib/stats/adaptive.ts';
import { seededRandom } from '../lib/stats/interleave.ts';
import { readRunRecord } from '../lib/load-run.ts';
import { parseOptions } from '../lib/options.ts';
import { parseRawCsv } from '../lib/results.ts';
import { stoppingRule } from '../lib/stats/sequential.ts';
import { serverWrapper } from './run-helpers.mts';
import { row } from './raw-row.mts';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-adaptive-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

const rule = stoppingRule({ alpha: 0.05, noisePct: 3, cases: 1, maxRounds: 24 });
/** Round i's two rows: side 1's throughput is `ratio` times side 0's, with seeded noise of `cv` on each. */
function feed(rounds: AdaptiveRounds, ratio: number, cv: number, seed: number, upTo: number, fail = new Set<number>()) {
  const random = seededRandom(seed);
  const noise = () => Math.exp(cv * (random() * 2 - 1) * Math.sqrt(3));
  const stops = [];
  for (let i = 1; i <= upTo; i++) {
    for (const side of [0, 1]) {
      const t = 100 * (side === 1 ? ratio : 1) * noise();
      const failed = side === 1 && fail.has(i);
      const stop = rounds.record(side, row({ iteration: i, throughput_mib_s: failed ? null : t, exit_reason: failed ? 'timeout' : 'success' }));
      if (stop) stops.push({ at: i, ...stop });
    }
  }
  return stops;
}

test('a clear slowdown is decided slower at the first look whose level the exact test can reach (10 rounds: 2/2^6 > alpha spent at 6)', () => {
  const rounds = new AdaptiveRounds(rule, 2, 1);
  const stops = feed(rounds, 0.8, 0.01, 1, 30);
  assert.deepEqual(stops.map((s) => [s.at, s.rounds, s.state, s.verdicts]), [[11, 10, 'decided', ['slower']]]);
  assert.equal(rounds.stopped(`${10 * 2 ** 20}@256`), true);
  assert.equal(rounds.stopped(`${10 * 2 ** 20}@512`), false, 'another case runs on');
});

test('no change in noise: judged at every look, stopped only at the last one (the cap), never slower', () => {
  const rounds = new AdaptiveRounds(rule, 2, 1);
  const stops = feed(rounds, 1, 0.1, 7, 40);
  assert.equal(stops.length, 1);
  assert.equal(stops[0].rounds, 24);
  assert.ok(stops[0].state === 'cap' || stops[0].verdicts[0] === 'same', JSON.stringify(stops[0]));
  assert.notEqual(stops[0].verdicts[0], 'slower');
});

test('a round in which a side failed does not count toward a look', () => {
  const rounds = new AdaptiveRounds(rule, 2, 1);
  // Rounds 3 and 5 failed on side 1: the tenth complete round is iteration 13.
  const stops = feed(rounds, 0.8, 0.01, 1, 30, new Set([3, 5]));
  assert.equal(stops[0].at, 13);
  assert.equal(stops[0].rounds, 10);
});

test('three sides: the case stops only when every later side is decided against the first', () => {
  const rounds = new AdaptiveRounds(rule, 3, 1);
  const random = seededRandom(3);
  let stop = null;
  for (let i = 1; i <= 30 && !stop; i++) {
    for (const [side, ratio] of [[0, 1], [1, 0.8], [2, 1]] as const) {
      // Side 2 is the same as side 0 but for 10% noise: not decided at 6 rounds.
      const t = 100 * ratio * (side === 2 ? Math.exp(0.1 * (random() * 2 - 1) * Math.sqrt(3)) : 1 + random() * 0.01);
      stop = rounds.record(side, row({ iteration: i, throughput_mib_s: t })) ?? stop;
    }
  }
  assert.ok(stop);
  assert.ok(stop.rounds > 6, `side 2 kept the case going past the first look (${stop.rounds})`);
  assert.equal(stop.verdicts[0], 'slower');
});

test('options: auto is the default with two servers; its flags need it; --binary and --ref do not mix', () => {
  const opts = (argv: string[]) => parseOptions(argv) as Exclude<ReturnType<typeof parseOptions>, 'help'>;
  assert.deepEqual(opts(['--ref', 'a', '--ref', 'b']).adaptive, { maxRounds: 48, noisePct: 3, pooled: true });
  assert.equal(opts(['--ref', 'a', '--ref', 'b']).matrix.iterations, 49);
  assert.equal(opts(['--ref', 'a', '--ref', 'b', '--iterations', '7']).adaptive, null);
  assert.deepEqual(opts(['--ref', 'a', '--ref', 'b', '--max-iterations', '20', '--noise', '5']).adaptive, { maxRounds: 19, noisePct: 5, pooled: true });
  assert.throws(() => opts(['--iterations', 'auto']), /--iterations auto: needs two or more --ref or --binary/);
  assert.throws(() => opts(['--ref', 'a', '--ref', 'b', '--max-iterations', '3']), /--max-iterations: from 7/);
  assert.throws(() => opts(['--ref', 'a', '--ref', 'b', '--iterations', '5', '--noise', '2']), /--noise goes with --iterations auto/);
  assert.equal(opts(['--ref', 'a', '--ref', 'b', '--no-pool']).adaptive!.pooled, false);
  assert.throws(() => opts(['--ref', 'a', '--ref', 'b', '--iterations', '5', '--no-pool']), /--no-pool goes with --iterations auto/);
  assert.throws(() => opts(['--ref', 'a', '--binary', '/bin/true']), /--binary and --ref/);
  assert.equal(opts(['--ref', 'a', '--ref', 'b', '--ref', 'c']).refs.length, 3);
});

test('two stand-ins as --binary, one 100% slower: interleaved rounds stop at the first look that can decide (16), slower, exit 1', { timeout: 300_000 }, async () => {
  const a = await serverWrapper(scratch, 'fast', '');
  const b = await serverWrapper(scratch, 'slow', 'export STANDIN_SLOWDOWN_PCT=100');
  let stdout = '';
  let stderr = '';
  const code = await main(['--binary', a, '--binary', b, '--sizes', '8MiB', '--memory', '512', '--provider', 'local', '--out', scratch, '--seed', '5'],
    { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  assert.equal(code, 1, stderr);
  const parent = stdout.trim().split('\n').at(-1)!;
  assert.deepEqual(fs.readdirSync(parent).sort(), ['compare', 'fast', 'history.md', 'history.svg', 'slow']);
  const rows = parseRawCsv(fs.readFileSync(path.join(parent, 'slow', 'raw.csv'), 'utf8'), 'raw.csv');
  // A warm-up and 16 rounds (at 6 and 10 the rule's level is below what 6 or 10 pairs can reach); the 32 planned after were left out.
  assert.deepEqual(rows.map((r) => r.iteration), Array.from({ length: 17 }, (_, i) => i + 1));
  const record = readRunRecord(path.join(parent, 'slow'))!;
  assert.equal(record.matrix.iterations, 49, 'the plan: up to 49');
  assert.deepEqual(record.ab?.stopping_rule?.looks, [6, 10, 16, 24, 36, 48]);
  assert.deepEqual(record.ab?.stops, [{ case: `${8 * 2 ** 20}@512`, rounds: 16, state: 'decided', verdicts: ['slower'], rounds_by_side: [16] }]);
  assert.match(stderr, /512MB 8MiB: decided after 16 rounds: slow slower/);
  const compare = JSON.parse(fs.readFileSync(path.join(parent, 'compare', 'compare.json'), 'utf8'));
  assert.equal(compare.cases[0].verdict, 'slower');
  assert.equal(compare.cases[0].rounds, 16);
});
