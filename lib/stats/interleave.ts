// The order of an A/B run: every case runs once per side (ref), the sides'
// iterations alternating, and which side goes first in each pair drawn from a
// seeded generator, so drift over a long run (thermal, noisy neighbours, a
// filling disk) hits both sides alike and the order can be replayed.
//   interleave([c1, c2], 2, 42) -> [{case: c1, side: 1}, {case: c1, side: 0}, {case: c2, side: 0}, {case: c2, side: 1}]

/** One unit of work: a case, and the side (index of the ref or server) it runs for. */
export interface Job<C> {
  case: C;
  side: number;
}

/** mulberry32: a tiny, well-mixed 32-bit PRNG; the same seed gives the same sequence everywhere. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws (Box-Muller) from a uniform source such as seededRandom's, two uniforms a draw. */
export function normalFrom(random: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** Each case once per side, in the cases' order; within each case the sides in a seeded random order (Fisher-Yates). */
export function interleave<C>(cases: C[], sides: number, seed: number): Job<C>[] {
  const random = seededRandom(seed);
  const out: Job<C>[] = [];
  for (const c of cases) {
    const order = Array.from({ length: sides }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const side of order) out.push({ case: c, side });
  }
  return out;
}

/**
 * Adaptive rounds: round i of every case before round i + 1 of any, so the
 * cases advance together and the pooled rule (lib/stats/pooled.ts) sees them
 * all at each look. `acrossLimits` (environments that are cheap to hold at
 * once: cgroups) takes every limit's cases in each round; otherwise each
 * memory limit (one environment, a VM) finishes its rounds before the next
 * limit starts. Within a round the cases keep their order.
 */
export function roundsInTurn<C extends { memoryMb: number; iteration: number }>(cases: C[], acrossLimits: boolean): C[] {
  const limits = [...new Set(cases.map((c) => c.memoryMb))];
  const limitOrder = (c: C) => (acrossLimits ? 0 : limits.indexOf(c.memoryMb));
  return cases.map((c, i) => ({ c, i }))
    .sort((a, b) => limitOrder(a.c) - limitOrder(b.c) || a.c.iteration - b.c.iteration || a.i - b.i)
    .map((x) => x.c);
}
