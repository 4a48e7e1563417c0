// How cases are judged, set without code: matrix.yaml's `judgment` rules give a
// case (or every case of a size, memory limit or uploads at once) a noise band
// of its own, or leave it out of the verdict with a reason. They change how
// compare-runs judges a case, never what is measured or how often; config.json
// records them (matrix.judgment) so a re-read run is judged the same way.
//   judgment:
//     - match: {size: 5GiB, memory_limit: 256}   # any of size, memory_limit, concurrency
//       noise: 10                                 # this case's noise band, percent
//     - match: {memory_limit: 2048}
//       ignore: true
//       reason: the runners' page cache fills 2 GB
// A later rule that matches a case overrides an earlier one's band or exclusion. Pure.
import { z } from 'zod';
import { CONCURRENCY, parseWhole, scalarBy, wholeFrom } from '../bounds.ts';
import { parseMemoryMb, parseSize } from '../units.ts';

/** One rule, as recorded in config.json: the selectors it has, and a band or an exclusion (its reason). */
export interface JudgmentRule {
  size_bytes?: number;
  memory_limit_mb?: number;
  concurrency?: number;
  noise_pct?: number;
  ignore?: string;
}

/** A noise band wider than this calls nothing: an exclusion, said plainly, is `ignore`. */
export const MAX_NOISE_PCT = 100;
const NOISE = `must be a percentage from 0 to ${MAX_NOISE_PCT}`;
const EITHER = 'give either noise (a percentage) or ignore: true with a reason';
const MATCH_KEYS = ['size', 'memory_limit', 'concurrency'];

const matchYaml = z.strictObject({
  size: scalarBy(parseSize).optional(),
  memory_limit: scalarBy(parseMemoryMb).optional(),
  concurrency: scalarBy((v) => parseWhole(CONCURRENCY, v)).optional(),
}, { error: (i) => (i.code === 'unrecognized_keys' ? `(known: ${MATCH_KEYS.join(', ')})` : `must be a mapping of ${MATCH_KEYS.join(', ')}`) })
  .refine((m) => Object.keys(m).length > 0, { error: `must be a mapping of ${MATCH_KEYS.join(', ')}` });

/** matrix.yaml's `judgment`: a list of rules, each read into its record form. */
export const judgmentYaml = z.array(z.strictObject({
  match: matchYaml,
  noise: z.number({ error: NOISE }).min(0, { error: NOISE }).max(MAX_NOISE_PCT, { error: NOISE }).optional(),
  ignore: z.literal(true, { error: 'must be true (to judge a case, leave the rule out)' }).optional(),
  reason: z.string({ error: 'must be text' }).optional(),
}, { error: (i) => (i.code === 'unrecognized_keys' ? '(known: match, noise, ignore, reason)' : 'must be a mapping: match, and noise or ignore with reason') })
  .superRefine((r, ctx) => {
    if ((r.noise === undefined) === (r.ignore === undefined)) ctx.addIssue({ code: 'custom', message: EITHER });
    else if (r.noise !== undefined && r.reason !== undefined) ctx.addIssue({ code: 'custom', path: ['reason'], message: 'goes with ignore: true' });
    else if (r.ignore && !r.reason?.trim()) ctx.addIssue({ code: 'custom', path: ['reason'], message: 'ignore: true needs a reason (text): it is shown in compare.md' });
  })
  .transform((r): JudgmentRule => ({
    ...(r.match.size !== undefined ? { size_bytes: r.match.size } : {}),
    ...(r.match.memory_limit !== undefined ? { memory_limit_mb: r.match.memory_limit } : {}),
    ...(r.match.concurrency !== undefined ? { concurrency: r.match.concurrency } : {}),
    ...(r.noise !== undefined ? { noise_pct: r.noise } : { ignore: r.reason!.trim() }),
  })), { error: 'must be a list of {match, noise} or {match, ignore: true, reason}' });

/** The issues of rules whose selectors match no case of the matrix, at the selector's path. */
export function unmatchedSelectors(rules: JudgmentRule[], m: { sizes: { bytes: number }[]; memoryLimitsMb: number[]; concurrency: number[] }):
  { path: (string | number)[]; message: string }[] {
  const checks = [
    ['size', 'size_bytes', m.sizes.map((s) => s.bytes), 'sizes (bytes)'],
    ['memory_limit', 'memory_limit_mb', m.memoryLimitsMb, 'memory limits (MB)'],
    ['concurrency', 'concurrency', m.concurrency, 'uploads at once'],
  ] as const;
  return rules.flatMap((r, i) => checks.flatMap(([key, field, listed, unit]) => {
    const v = r[field];
    return v === undefined || listed.includes(v) ? [] : [{ path: ['judgment', i, 'match', key], message: `matches no case: the matrix's ${unit} are ${listed.join(', ')}` }];
  }));
}

/** config.json's matrix.judgment. */
export const judgmentRecord = z.array(z.strictObject({
  size_bytes: wholeFrom(1).optional(), memory_limit_mb: wholeFrom(1).optional(), concurrency: wholeFrom(1).optional(),
  noise_pct: z.number({ error: 'must be a percentage' }).min(0, { error: 'must be a percentage' }).max(MAX_NOISE_PCT, { error: 'must be a percentage' }).optional(),
  ignore: z.string({ error: 'must be the reason (text)' }).min(1, { error: 'must be the reason (text)' }).optional(),
}, { error: (i) => (i.code === 'unrecognized_keys' ? 'is not a judgment field' : 'must be an object') })
  .refine((r) => (r.noise_pct === undefined) !== (r.ignore === undefined), { error: 'must have noise_pct or ignore' }), { error: 'must be a list' });

/** The band and exclusion rules give a case (the last matching rule of each kind wins); null where none applies. */
export function judgmentFor(rules: readonly JudgmentRule[] | undefined, c: { fileSizeBytes: number; memoryLimitMb: number; concurrency: number }):
  { noisePct: number | null; ignored: string | null } {
  const out = { noisePct: null as number | null, ignored: null as string | null };
  for (const r of rules ?? []) {
    if ((r.size_bytes ?? c.fileSizeBytes) !== c.fileSizeBytes || (r.memory_limit_mb ?? c.memoryLimitMb) !== c.memoryLimitMb
      || (r.concurrency ?? c.concurrency) !== c.concurrency) continue;
    if (r.ignore !== undefined) out.ignored = r.ignore;
    if (r.noise_pct !== undefined) out.noisePct = r.noise_pct;
  }
  return out;
}
