// The stopping rule's false alarms and power on a 20-case matrix, for the README:
// seeded paired log ratios (normal, paired SD 4%, 8%, 15%) through the rule's own
// SequentialComparison, 48 rounds at most, the family 20 cases x 1 later server.
//   node --import tsx bench/power.mts [matrices]     (default 1000; power from 4 x as many comparisons)
import { familyOf } from '../lib/family.ts';
import { seededRandom } from '../lib/interleave.ts';
import { SequentialComparison, stoppingRule, type LookDecision } from '../lib/sequential.ts';

const CASES = 20;
const M = Number(process.argv[2] ?? 1000);
const rule = stoppingRule({ alpha: 0.05, noisePct: 3, family: familyOf(Array.from({ length: CASES }, (_, i) => `case${i}`), 2) });
const cap = rule.looks.at(-1)!;
const rand = seededRandom(27);
const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

function comparison(change: number, sd: number): LookDecision {
  const s = new SequentialComparison(rule);
  for (let i = 1; ; i++) {
    const d = s.round(Math.log(1 + change) + sd * normal(), i === cap);
    if (d && d.state !== 'continue') return d;
  }
}

console.log('| paired SD | A/A any slower or faster | A/A all `same` (mean rounds) | 5% slower found (mean rounds) | 10% slower found (mean rounds) |');
console.log('|---|---|---|---|---|');
for (const sd of [0.04, 0.08, 0.15]) {
  let anyWrong = 0;
  let allSame = 0;
  let rounds = 0;
  for (let m = 0; m < M; m++) {
    const ds = Array.from({ length: CASES }, () => comparison(0, sd));
    if (ds.some((d) => d.verdict === 'slower' || d.verdict === 'faster')) anyWrong++;
    if (ds.every((d) => d.verdict === 'same')) allSame++;
    rounds += ds.reduce((t, d) => t + d.rounds, 0);
  }
  const power = (change: number) => {
    let found = 0;
    let n = 0;
    for (let i = 0; i < 4 * M; i++) {
      const d = comparison(change, sd);
      if (d.verdict === 'slower') found++;
      n += d.rounds;
    }
    return `${((100 * found) / (4 * M)).toFixed(1)}% (${(n / (4 * M)).toFixed(0)})`;
  };
  const pct = (x: number) => `${((100 * x) / M).toFixed(1)}%`;
  console.log(`| ${sd * 100}% | ${pct(anyWrong)} | ${pct(allSame)} (${(rounds / (M * CASES)).toFixed(1)}) | ${power(-0.05)} | ${power(-0.1)} |`);
}
