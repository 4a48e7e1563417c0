import tCdf from '@stdlib/stats-base-dists-t-cdf';
import { seededRandom } from '../lib/stats/interleave.ts';
const random = seededRandom(7);
const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
const phi = Number(process.argv[4] ?? 0.5), n = Number(process.argv[2] ?? 48), level = Number(process.argv[3] ?? 0.01), R = 200000;
const inf = (1 + phi) / (1 - phi);
const hits: Record<string, number> = { n1: 0, neff: 0, neffvar: 0, satt: 0, sattvar: 0 };
for (let r = 0; r < R; r++) {
  let a = normal(); const d: number[] = []; for (let i = 0; i < n; i++) { a = phi * a + Math.sqrt(1 - phi * phi) * normal(); d.push(a); }
  const mean = d.reduce((x, y) => x + y, 0) / n;
  const ss = d.reduce((x, y) => x + (y - mean) ** 2, 0);
  const s1 = Math.sqrt(ss / (n - 1));
  const t = Math.abs(mean) / (s1 * Math.sqrt(inf / n));
  if (2 * tCdf(-t, n - 1) < level) hits.n1++;
  const neff = n / inf;
  if (2 * tCdf(-t, Math.max(1, neff - 1)) < level) hits.neff++;
  // s^2 unbiased under AR(1): divide by n - inflation rather than n - 1
  const s2 = Math.sqrt(ss / Math.max(1, n - inf));
  const t2 = Math.abs(mean) / (s2 * Math.sqrt(inf / n));
  if (2 * tCdf(-t2, Math.max(1, neff - 1)) < level) hits.neffvar++;
  const dfs = Math.max(1, (n * (1 - phi * phi)) / (1 + phi * phi) - 1);
  if (2 * tCdf(-t, dfs) < level) hits.satt++;
  if (2 * tCdf(-t2, dfs) < level) hits.sattvar++;
}
console.log(n, level, phi, Object.entries(hits).map(([k, v]) => `${k} ${(v / R / level).toFixed(2)}x`).join(' '));
