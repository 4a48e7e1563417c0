// --shard k/N: which cases of the matrix this machine runs, so CI engines that
// run jobs side by side (GitHub matrix jobs, CircleCI parallelism, Kubernetes
// Indexed Jobs) can split a run, and ./merge-runs can put it together again.
// A case (file size x memory limit x uploads at once) moves whole: every iteration, its warm-up
// and every ref run in one shard, so each comparison stays on one machine.
// Pure: the environment comes in as an argument.
//   const shard = parseShard('2/4', process.env)          // { index: 2, total: 4, source: '--shard 2/4' }
//   const plan = planShards(matrix, 4, 2)                   // plan.shards[1].cases: what 2/4 runs
//   const cases = shardCases(matrix, shard, 2)              // in run order, for the runner
import { byRunOrder, caseKey, matrixCases, type CaseId } from './cases.ts';
import { InputError } from './errors.ts';
import { expandCases, type Case, type Matrix, type ProviderName, type SizeSpec } from './matrix.ts';

export interface Shard {
  /** 1-based. */
  index: number;
  total: number;
  /** Where k/N came from: the flag, or the CI variables read for `auto`. */
  source: string;
}

const GiB = 2 ** 30;

/**
 * An environment boot, in upload bytes of the same time: a qemu VM boots to
 * ready in about 10-20 s under KVM, a vagrant one about 3x longer (bench: qemu
 * >= 2x faster), while a local cgroup takes milliseconds.
 */
export const BOOT_BYTES: Record<ProviderName, number> = { local: 0, qemu: 2 * GiB, vagrant: 6 * GiB };

/** Recorded in config.json: two shards merge only when they were cut by the same rule. */
export const SHARD_RULE =
  'v2: cases (file size x memory limit x uploads at once, with all their iterations, warm-up and refs) taken heaviest first ' +
  '(bytes x uploads at once x iterations x refs; ties: larger memory limit, then larger size, then fewer at once), each to the shard whose planned work grows least, ' +
  'work = upload bytes + one environment boot per memory limit new to the shard (local 0, qemu 2 GiB, vagrant 6 GiB); ' +
  'ties: a shard that already has that memory limit, then the lower shard number';

/** Reads `--shard` text: `k/N` (1 <= k <= N), or `auto` for the CI engine's own variables. */
export function parseShard(text: string, env: Record<string, string | undefined>): Shard {
  const t = text.trim();
  if (t === 'auto') return autoShard(env);
  const m = /^(\d+)\/(\d+)$/.exec(t);
  if (!m) throw new InputError(`--shard: expected k/N (e.g. 2/4, shards numbered from 1) or auto (got "${text}")`);
  return checked(Number(m[1]), Number(m[2]), `--shard ${t}`, `--shard ${t}`);
}

function checked(index: number, total: number, source: string, what: string): Shard {
  if (!Number.isSafeInteger(total) || total < 1) throw new InputError(`${what}: the number of shards must be 1 or more`);
  if (!Number.isSafeInteger(index) || index < 1 || index > total) {
    throw new InputError(`${what}: the shard must be from 1 to ${total} (shards are numbered from 1)`);
  }
  return { index, total, source };
}

/**
 * CircleCI: CIRCLE_NODE_INDEX (from 0) of CIRCLE_NODE_TOTAL. GitLab `parallel: N`:
 * CI_NODE_INDEX (from 1) of CI_NODE_TOTAL (a job without `parallel` has only
 * CI_NODE_TOTAL=1: the whole run). Kubernetes Indexed
 * Job: JOB_COMPLETION_INDEX (from 0), with the Job's completions passed as
 * UPS_SHARD_TOTAL (Kubernetes exposes the index, not the count). GitHub Actions
 * has no such variables: its matrix passes --shard k/N.
 */
function autoShard(env: Record<string, string | undefined>): Shard {
  const int = (name: string) => {
    const v = env[name]?.trim() ?? '';
    if (!/^\d+$/.test(v)) throw new InputError(`--shard auto: ${name}=${JSON.stringify(env[name] ?? '')} is not a whole number`);
    return Number(v);
  };
  if (env.CIRCLE_NODE_TOTAL !== undefined || env.CIRCLE_NODE_INDEX !== undefined) {
    const i = int('CIRCLE_NODE_INDEX');
    const n = int('CIRCLE_NODE_TOTAL');
    return checked(i + 1, n, `CIRCLE_NODE_INDEX=${i} CIRCLE_NODE_TOTAL=${n}`, `--shard auto (CIRCLE_NODE_INDEX=${i}, CIRCLE_NODE_TOTAL=${n})`);
  }
  if (env.CI_NODE_INDEX !== undefined || env.CI_NODE_TOTAL !== undefined) {
    const n = int('CI_NODE_TOTAL');
    const i = env.CI_NODE_INDEX === undefined && n === 1 ? 1 : int('CI_NODE_INDEX');
    return checked(i, n, `CI_NODE_INDEX=${i} CI_NODE_TOTAL=${n}`, `--shard auto (CI_NODE_INDEX=${i}, CI_NODE_TOTAL=${n})`);
  }
  if (env.JOB_COMPLETION_INDEX !== undefined) {
    if (env.UPS_SHARD_TOTAL === undefined) {
      throw new InputError('--shard auto: JOB_COMPLETION_INDEX is set but UPS_SHARD_TOTAL is not: set it to the Job\'s spec.completions');
    }
    const i = int('JOB_COMPLETION_INDEX');
    const n = int('UPS_SHARD_TOTAL');
    return checked(i + 1, n, `JOB_COMPLETION_INDEX=${i} UPS_SHARD_TOTAL=${n}`, `--shard auto (JOB_COMPLETION_INDEX=${i}, UPS_SHARD_TOTAL=${n})`);
  }
  throw new InputError(
    '--shard auto: no CI shard variables (CIRCLE_NODE_INDEX and CIRCLE_NODE_TOTAL, CI_NODE_INDEX and CI_NODE_TOTAL, or JOB_COMPLETION_INDEX with UPS_SHARD_TOTAL); ' +
      'on GitHub Actions pass --shard ${{ matrix.shard }}/${{ strategy.job-total }}',
  );
}

export interface PlannedCase {
  memoryMb: number;
  size: SizeSpec;
  concurrency: number;
  /** Bytes this case uploads: size x uploads at once x iterations x refs. */
  uploadBytes: number;
}

export interface PlannedShard {
  /** Memory limit largest first, then size largest first (the run order). */
  cases: PlannedCase[];
  uploadBytes: number;
  /** Environments brought up: one per memory limit in the shard. */
  boots: number;
  /** uploadBytes + boots x BOOT_BYTES[provider]: what the rule balances. */
  work: number;
}

export type ShardMatrix = Pick<Matrix, 'sizes' | 'memoryLimitsMb' | 'iterations' | 'provider' | 'concurrency'>;

/** Splits the matrix's cases over `total` shards by SHARD_RULE; `refs` is how many servers each case runs (1, or 2 for A/B). */
export function planShards(m: ShardMatrix, total: number, refs: number): PlannedShard[] {
  const sides = Math.max(1, refs);
  const all: PlannedCase[] = matrixCases(m).map((c) => {
    const size = m.sizes.find((s) => s.bytes === c.bytes)!;
    return { memoryMb: c.memoryMb, size, concurrency: c.concurrency, uploadBytes: size.bytes * c.concurrency * m.iterations * sides };
  });
  if (total > all.length) {
    throw new InputError(`--shard .../${total}: the matrix has only ${all.length} cases (file size x memory limit x uploads at once) to share out; use at most ${all.length} shards`);
  }
  // Sorted on values only, so the order sizes and limits are listed in plays no part.
  all.sort((a, b) => b.uploadBytes - a.uploadBytes || byRunOrder(idOf(a), idOf(b)));
  const boot = BOOT_BYTES[m.provider];
  const shards = Array.from({ length: total }, () => ({ cases: [] as PlannedCase[], mems: new Set<number>(), work: 0 }));
  for (const c of all) {
    let best = 0;
    let bestCost = Infinity;
    let bestHas = false;
    shards.forEach((s, i) => {
      const has = s.mems.has(c.memoryMb);
      const cost = s.work + c.uploadBytes + (has ? 0 : boot);
      if (cost < bestCost || (cost === bestCost && has && !bestHas)) { best = i; bestCost = cost; bestHas = has; }
    });
    const s = shards[best];
    s.cases.push(c);
    s.mems.add(c.memoryMb);
    s.work = bestCost;
  }
  return shards.map((s) => ({
    cases: s.cases.sort((a, b) => byRunOrder(idOf(a), idOf(b))),
    uploadBytes: s.cases.reduce((t, c) => t + c.uploadBytes, 0),
    boots: s.mems.size,
    work: s.work,
  }));
}

const idOf = (c: PlannedCase): CaseId => ({ bytes: c.size.bytes, memoryMb: c.memoryMb, concurrency: c.concurrency });

/** The cases (every iteration) shard `shard` runs, in the run order of expandCases. */
export function shardCases(m: Matrix, shard: Shard, refs: number): Case[] {
  const mine = new Set(planShards(m, shard.total, refs)[shard.index - 1].cases.map(caseKey));
  return expandCases(m).filter((c) => mine.has(caseKey(c)));
}

/** What config.json records under `shard`. */
export interface ShardRecord {
  index: number;
  total: number;
  source: string;
  rule: string;
  /** caseKey of every case this shard runs. */
  cases: string[];
  planned_upload_bytes: number;
  planned_boots: number;
}

export function shardRecord(m: Matrix, shard: Shard, refs: number): ShardRecord {
  const p = planShards(m, shard.total, refs)[shard.index - 1];
  return {
    index: shard.index, total: shard.total, source: shard.source, rule: SHARD_RULE,
    cases: p.cases.map(caseKey),
    planned_upload_bytes: p.uploadBytes, planned_boots: p.boots,
  };
}
