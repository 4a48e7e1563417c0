// run-tests --bisect GOOD BAD: which commit changed the metric. Step 0 runs
// GOOD and BAD interleaved and adaptive over the matrix's cases; when none
// moved, it says so and stops. Otherwise it bisects the case that moved most:
// each step builds the midpoint (a failed build is skipped, as `git bisect
// skip` does) and runs it interleaved with the current range's two ends, its
// rounds judged by lib/stats/bisect.ts (StepRounds) until the midpoint is like one
// end, or the cap. Every step is an ordinary run of three refs (lib/run.ts)
// in the bisection's folder; completed steps go to steps.jsonl, so --resume
// never measures one again. At the end: bisect.md, bisect.json, bisect.svg.
//
//   cd picoshare && run-tests --bisect 1.2.0 1.3.0 --sizes 100MiB --memory 512
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Mustache from 'mustache';
import { $ } from 'zx';
import {
  answer, chooseCase, classifyStep, currentRange, expectedSteps, formatChange, metricByName, moveWords, nextMidpoint, stopWhenClassified,
  stopWhenDecided, StepRounds, SURVIVAL_SAME_MIN_ROUNDS, type Answer, type BisectMetric, type CommitState, type PairJudgement,
} from './stats/bisect.ts';
import { appendStep, readBisectPlan, readSteps, writeBisectPlan, type BisectPlan, type Commit, type StepRecord } from './bisect-plan.ts';
import { caseKey } from './cases.ts';
import { bisectChartSvg, type BisectPoint } from './render/charts.ts';
import { InputError, type Io } from './errors.ts';
import { Interrupts } from './interrupts.ts';
import { lockRunDir, unlockRunDir } from './lock.ts';
import { expandCases, type Case, type Matrix } from './matrix.ts';
import type { Options } from './options.ts';
import { SUITE_DIR } from './paths.ts';
import { Progress } from './progress.ts';
import { BuildFailed } from './refs.ts';
import { createRunDir, writeFileAtomic } from './results.ts';
import {
  adaptiveRule, executeRun, finishRun, makeProvider, openRun, preflight, prepareGuestImage, prepareServers, prepareTestFiles, sharedSecret,
  updateRecords,
} from './run.ts';
import { transitions } from './run-record.ts';
import { median } from './stats/stats.ts';


/** GOOD, then every commit after it up to BAD, oldest first; bad input (exit 2) when GOOD is not an ancestor of BAD. */
export async function rangeCommits(source: string, good: string, bad: string, firstParent: boolean): Promise<Commit[]> {
  const git = $({ cwd: source, nothrow: true, quiet: true });
  const resolve = async (ref: string) => {
    const r = await git`git rev-parse --verify --quiet ${`${ref}^{commit}`}`;
    if (r.exitCode !== 0) throw new InputError(`ref "${ref}" is not a commit in ${source}`);
    return r.stdout.trim();
  };
  const [g, b] = [await resolve(good), await resolve(bad)];
  if (g === b) throw new InputError(`${good} and ${bad} are the same commit: nothing between them`);
  if ((await git`git merge-base --is-ancestor ${g} ${b}`).exitCode !== 0) {
    throw new InputError(`${good} is not an ancestor of ${bad}: the first ref must be older, on the second's history`);
  }
  const fmt = '--format=%H%x09%cI%x09%s';
  const parse = (out: string): Commit[] => out.trim().split('\n').filter(Boolean).map((l) => {
    const [commit, date, ...subject] = l.split('\t');
    return { commit, date, subject: subject.join('\t') };
  });
  const order = firstParent ? ['--first-parent'] : ['--topo-order'];
  const range = parse((await git`git log --reverse --ancestry-path ${order} ${fmt} ${`${g}..${b}`}`).stdout);
  if (firstParent && (await git`git rev-parse ${`${range[0].commit}^1`}`).stdout.trim() !== g) {
    throw new InputError(`${good} is not on ${bad}'s first-parent history (it came in through a merge): give --no-first-parent`);
  }
  return [...parse((await git`git log -1 ${fmt} ${g}`).stdout), ...range];
}

interface Ctx {
  opts: Options; argv: string[]; dir: string; plan: BisectPlan; metric: BisectMetric;
  progress: Progress; say: (s: string) => void; interrupts: Interrupts;
  files: NonNullable<Awaited<ReturnType<typeof prepareTestFiles>>>; secret: string; image: Awaited<ReturnType<typeof prepareGuestImage>>;
}

/** The ref a commit is built and named by: GOOD and BAD as given, the others by their short hash. */
const refName = (plan: BisectPlan, i: number) => (i === 0 ? plan.good : i === plan.commits.length - 1 ? plan.bad : plan.commits[i].commit.slice(0, 12));

/** One step: the commits `sides` interleaved over `m`'s cases, judged by `judge`; null when interrupted. */
async function measure(ctx: Ctx, step: number, sides: number[], m: Matrix, judge: (cases: Case[]) => StepRounds) {
  const t0 = Date.now();
  const servers = await prepareServers(m, sides.map((i) => refName(ctx.plan, i)), [], ctx.progress);
  if (ctx.interrupts.received) return null;
  const cases = expandCases(m);
  const rounds = judge(cases);
  const label = step === 0 ? 'confirm' : refName(ctx.plan, sides[1]);
  const run = await openRun({
    m, cases, shard: null, sides: servers, out: path.join(ctx.dir, `step-${step}-${label.replace(/[^A-Za-z0-9._-]+/g, '_')}`), argv: ctx.argv,
    matrixFile: ctx.opts.matrixFile, seed: ctx.plan.seed + step, resume: null, rule: adaptiveRule(ctx.opts.adaptive, cases), pooled: null, plan: null, stdout: (s) => ctx.say(s.trim()),
  }, ctx.say);
  const provider = makeProvider(m, servers[0].spec, ctx.secret, ctx.image, { signal: ctx.interrupts.signal, say: ctx.say });
  ctx.interrupts.startRun((sig) => updateRecords(run, (r) => transitions.interrupted(r, `interrupted by ${sig}`)), () => provider.waitingFor());
  try {
    await executeRun(run, provider, { m, files: ctx.files, secret: ctx.secret, signal: ctx.interrupts.signal, progress: ctx.progress, rounds });
  } finally {
    await finishRun(run, provider, (s) => ctx.say(`results: ${s.trim()}`));
  }
  if (ctx.interrupts.received) return null;
  return { folder: path.relative(ctx.dir, run.parent!), cases, rounds, seconds: (Date.now() - t0) / 1000 };
}

/** The matrix narrowed to one case (config.json of a step then says what ran). */
function oneCase(m: Matrix, c: Case): Matrix {
  return { ...m, sizes: [c.size], memoryLimitsMb: [c.memoryMb], concurrency: [c.concurrency ?? 1] };
}

export async function runBisect(opts: Options, argv: string[], io: Io): Promise<number> {
  const b = opts.bisect!;
  const metric = metricByName(b.metric)!;
  const m = opts.matrix;
  if (!opts.adaptive) throw new InputError('--bisect measures in adaptive rounds: drop --iterations N');
  const progress = new Progress(io.stderr), say = (line: string) => progress.line(line);
  const source = path.resolve(m.server.kind === 'source' ? m.server.source : process.cwd());
  preflight(m);
  let dir: string, plan: BisectPlan;
  if (b.resume) {
    dir = b.resume;
    plan = readBisectPlan(dir)!;
    lockRunDir(dir);
  } else {
    const commits = await rangeCommits(source, b.good, b.bad, b.firstParent);
    dir = createRunDir(opts.out);
    plan = {
      argv, cwd: process.cwd(), source, good: b.good, bad: b.bad, metric: metric.name, first_parent: b.firstParent, commits,
      seed: opts.seed ?? crypto.randomInt(2 ** 31), started_at: new Date().toISOString(),
    };
    writeBisectPlan(dir, plan);
  }
  const n = plan.commits.length - 1;
  say(`bisecting ${metric.name} over ${n} ${b.firstParent ? 'first-parent ' : ''}commits ${plan.good}..${plan.bad} (at most about ${expectedSteps(n)} steps when every step decides): ${dir}`);
  const steps = readSteps(dir);
  if (steps.length) say(`resuming: ${steps.length} completed steps in ${path.join(dir, 'steps.jsonl')}, none measured again`);
  const interrupts = new Interrupts(say).install();
  try {
    const allCases = expandCases(m);
    const files = await prepareTestFiles(m, allCases, progress, () => interrupts.received !== null);
    if (!files || interrupts.received) return stopped(interrupts, dir, io);
    const ctx: Ctx = { opts, argv, dir, plan, metric, progress, say, interrupts, files, secret: sharedSecret(say), image: await prepareGuestImage(m, say) };
    const warmup = m.warmupIterations;

    // Step 0: does BAD differ from GOOD at all, and on which case most?
    let confirm = steps.find((s) => s.kind === 'confirm');
    if (!confirm) {
      const r = await measure(ctx, 0, [0, n], m, (cases) => new StepRounds(adaptiveRule(opts.adaptive, cases)!, metric, warmup, 2, [[0, 1]], stopWhenDecided));
      if (!r) return stopped(interrupts, dir, io);
      const keys = [...new Set(r.cases.map((c) => caseKey(c)))]; // a Case is one iteration of a case
      const judged = keys.map((k) => ({ case: k, judgement: r.rounds.judgements(k)?.[0] ?? null }));
      const chosen = chooseCase(judged.filter((j): j is { case: string; judgement: PairJudgement } => j.judgement !== null));
      const key = chosen?.case ?? judged[0].case;
      confirm = {
        step: 0, kind: 'confirm', sides: [0, n], commit: n, folder: r.folder, case: key, cases: judged, judgements: chosen ? [chosen.judgement] : [],
        class: chosen ? 'bad' : null, values: r.rounds.values(key), rounds: r.rounds.values(key)[0].length, seconds: r.seconds, ended_at: new Date().toISOString(),
      };
      appendStep(dir, confirm);
      steps.push(confirm);
    }
    const toward = confirm.judgements[0]?.move;
    if (toward !== 'up' && toward !== 'down') return finish(ctx, steps, null, io);
    const key = confirm.case!;
    const bisected = allCases.find((c) => caseKey(c) === key)!;
    const stepMatrix = oneCase(m, bisected);
    say(`${plan.good} -> ${plan.bad}: ${metric.name} ${moveWords(metric, toward)} ${formatChange(metric, confirm.judgements[0])} at ${confirm.case}: bisecting on that case`);

    // The steps: the midpoint of the current range against its two ends, until one commit is left or none can split it.
    const states = statesOf(steps);
    for (let mid = nextMidpoint(n, states); mid !== null; mid = nextMidpoint(n, states)) {
      const step = steps.length;
      const { lo, hi } = currentRange(n, states);
      say(`step ${step}: ${refName(plan, mid)} (${mid} of ${n}), between ${refName(plan, lo)} and ${refName(plan, hi)}`);
      const t0 = Date.now();
      let record: StepRecord | null = null;
      try {
        await prepareServers(stepMatrix, [refName(plan, mid)], [], progress);
      } catch (e) {
        if (!(e instanceof BuildFailed)) throw e;
        // The build's last unindented line: Go indents the detail under its error line (`\twant ()`).
        const last = e.message.trimEnd().split('\n').filter((l) => /^\S/.test(l)).at(-1)!;
        say(`step ${step}: the build of ${refName(plan, mid)} failed (${last}): skipped`);
        record = {
          step, kind: 'skip', sides: [mid], commit: mid, folder: null, case: confirm.case, judgements: [], class: 'skip', values: [], rounds: 0,
          seconds: (Date.now() - t0) / 1000, build_error: last, ended_at: new Date().toISOString(),
        };
      }
      if (interrupts.received) return stopped(interrupts, dir, io);
      record ??= await (async () => {
        const r = await measure(ctx, step, [lo, mid, hi], stepMatrix, (cases) => new StepRounds(adaptiveRule(opts.adaptive, cases)!, metric, warmup, 3, [[0, 1], [1, 2]], stopWhenClassified(toward)));
        if (!r) return null;
        const j = r.rounds.judgements(key) ?? [];
        const cls = j.length === 2 ? classifyStep(j[0].move, j[1].move, toward) : 'undecided';
        const values = r.rounds.values(key);
        return {
          step, kind: 'midpoint' as const, sides: [lo, mid, hi], commit: mid, folder: r.folder, case: key, judgements: j, class: cls, values,
          rounds: values[0].length, seconds: (Date.now() - t0) / 1000, ended_at: new Date().toISOString(),
        };
      })();
      if (!record) return stopped(interrupts, dir, io);
      appendStep(dir, record);
      steps.push(record);
      states.set(mid, record.class as CommitState);
      say(`step ${step}: ${refName(plan, mid)} is ${record.class}${record.kind === 'midpoint' ? ` after ${record.rounds} rounds (${record.judgements.map((x) => `${refName(plan, record.sides[x.from])} -> ${refName(plan, record.sides[x.to])} ${moveWords(metric, x.move)} ${formatChange(metric, x)}`).join('; ')})` : ''}`);
    }
    return finish(ctx, steps, answer(n, states), io);
  } finally {
    interrupts.uninstall();
    unlockRunDir(dir);
  }
}

function statesOf(steps: StepRecord[]): Map<number, CommitState> {
  const states = new Map<number, CommitState>();
  for (const s of steps) if (s.kind !== 'confirm' && s.class) states.set(s.commit, s.class);
  return states;
}

function stopped(interrupts: Interrupts, dir: string, io: Io): number {
  io.stderr.write(`interrupted: the completed steps are kept in ${path.join(dir, 'steps.jsonl')}; go on with: run-tests --resume ${dir}\n`);
  io.stdout.write(`${dir}\n`);
  return interrupts.exitCode() ?? 1;
}

/**
 * The culprit is the first commit like BAD, so it carries the change from GOOD to BAD. Its own comparison with
 * its parent may have stopped undecided (its step was classified by the other link): then the headline says so.
 */
export function culpritHeadline(plan: BisectPlan, ans: Extract<Answer, { kind: 'culprit' }>, metric: BisectMetric,
  change: { text: string; verdict: string; rounds: number }, direction: string | null): string {
  const made = direction ?? change.verdict;
  const alone = direction && change.verdict !== direction
    ? ` (that comparison alone: ${change.verdict} after ${change.rounds} rounds; its step judged it like ${plan.bad} by the rule below)` : '';
  return `${plan.commits[ans.index].commit.slice(0, 12)} "${plan.commits[ans.index].subject}" made ${metric.name} ${made}: ` +
    `${change.text} against its parent ${plan.commits[ans.parent].commit.slice(0, 12)}${alone}.`;
}

/**
 * A commit against GOOD through paired comparisons only: BAD from the confirmation; a midpoint from its step
 * (against that step's good end), plus that end's own place, found the same way. Paired links, never two
 * separate steps' values side by side: on a loaded machine those drift apart by more than the change.
 * The interval is the last link's, moved by the chain before it.
 */
function againstGood(steps: StepRecord[], index: number): { estimate: number; lo: number; hi: number; via: number | null } | null {
  if (index === 0) return { estimate: 0, lo: 0, hi: 0, via: null };
  const confirm = steps.find((s) => s.kind === 'confirm')!;
  const own = confirm.sides[1] === index ? confirm : [...steps].reverse().find((s) => s.kind === 'midpoint' && s.commit === index);
  const j = own?.judgements[0];
  if (!own || !j) return null;
  const anchor = own.sides[0];
  const before = againstGood(steps, anchor);
  if (!before) return null;
  return { estimate: before.estimate + j.estimate, lo: before.estimate + j.lo, hi: before.estimate + j.hi, via: anchor === 0 ? null : anchor };
}

/** bisect.json, bisect.md and bisect.svg; the exit code: 0 a culprit (or nothing to bisect), 1 no single commit. */
async function finish(ctx: Ctx, steps: StepRecord[], ans: Answer | null, io: Io): Promise<number> {
  const { plan, metric, dir } = ctx;
  const n = plan.commits.length - 1;
  const confirm = steps.find((s) => s.kind === 'confirm')!;
  const short = (i: number) => `${refName(plan, i)}${i === 0 || i === n ? ` (${plan.commits[i].commit.slice(0, 12)})` : ''}`;
  const totalSeconds = steps.reduce((s, x) => s + x.seconds, 0);
  const bisectSteps = steps.filter((s) => s.kind !== 'confirm');
  // The culprit against its parent: the last step that had both, where they were neighbouring sides.
  let culprit = null;
  if (ans?.kind === 'culprit') {
    const s = [...steps].reverse().find((x) => x.sides.includes(ans.index) && x.sides.includes(ans.parent))!;
    const j = s.judgements.find((x) => s.sides[x.from] === ans.parent && s.sides[x.to] === ans.index) ?? s.judgements[0];
    const c = plan.commits[ans.index], p = plan.commits[ans.parent];
    culprit = {
      commit: c.commit, subject: c.subject, date: c.date, parent: p.commit, parent_subject: p.subject,
      change: { estimate: j.estimate, lo: j.lo, hi: j.hi, p: Number(j.p.toPrecision(3)), rounds: j.rounds, text: formatChange(metric, j), verdict: moveWords(metric, j.move) }, step: s.step,
    };
  }
  const measured = [...new Set(steps.flatMap((s) => s.sides))].sort((a, b) => a - b);
  const path_ = measured.map((i) => {
    const own = [...steps].reverse().find((s) => s.commit === i && (s.kind !== 'confirm' || i === n)) ?? confirm;
    const side = own.sides.indexOf(i);
    const vs = i === 0 ? null : againstGood(steps, i);
    const vals = own.values[side] ?? [];
    return {
      index: i, commit: plan.commits[i].commit, ref: refName(plan, i), subject: plan.commits[i].subject, date: plan.commits[i].date,
      class: i === 0 ? 'good (GOOD)' : i === n ? 'bad (BAD)' : own.class, value: vals.length ? (metric.kind === 'rate' ? vals.reduce((a, b) => a + b, 0) / vals.length : median(vals)) : null,
      vs_good: vs && { estimate: vs.estimate, lo: vs.lo, hi: vs.hi, via: vs.via === null ? null : plan.commits[vs.via].commit, text: formatChange(metric, vs) },
      step: own.step, rounds: own.rounds, seconds: Math.round(own.seconds), build_error: own.build_error ?? null, culprit: ans?.kind === 'culprit' && ans.index === i,
    };
  });
  const toward = confirm.judgements[0]?.move;
  const direction = toward && (toward === 'up' || toward === 'down') ? moveWords(metric, toward) : null;
  const headline = !ans
    ? `${plan.good} and ${plan.bad} do not differ in ${metric.name} at any case: ${confirm.cases!.map((c) => `${c.case} ${c.judgement ? `${c.judgement.move} ${formatChange(metric, c.judgement)} after ${c.judgement.rounds} rounds` : 'no rounds with both sides measured'}`).join('; ')}. Nothing to bisect.`
    : ans.kind === 'culprit'
      ? culpritHeadline(plan, ans, metric, { text: culprit!.change.text, verdict: culprit!.change.verdict, rounds: culprit!.change.rounds }, direction)
      : ans.kind === 'gradual'
        ? `No single commit: ${ans.at.map(short).join(', ')} lies between ${plan.good} and ${plan.bad} in ${metric.name} (part of the change before it, part after): the change is gradual.`
        : `No single commit: the change lies between ${short(ans.lo)} and ${short(ans.hi)}, ${ans.hi - ans.lo - 1} commits apart` +
          `${ans.skipped.length ? `; ${ans.skipped.length} did not build (${ans.skipped.map(short).join(', ')})` : ''}${ans.undecided.length ? `; ${ans.undecided.length} stayed undecided at the cap (${ans.undecided.map(short).join(', ')})` : ''}.`;
  const rule = adaptiveRule(ctx.opts.adaptive, [expandCases(ctx.opts.matrix)[0]])!;
  const json = {
    good: { ref: plan.good, commit: plan.commits[0].commit }, bad: { ref: plan.bad, commit: plan.commits[n].commit },
    metric: { name: metric.name, title: metric.title, unit: metric.unit, worse: metric.worse, kind: metric.kind },
    first_parent: plan.first_parent, commits_in_range: n, case: confirm.case, case_label: caseLabel(ctx.opts.matrix, confirm.case),
    case_choice: (confirm.cases?.length ?? 0) > 1 ? 'the case where GOOD and BAD differ most (largest |change|) among those that differ' : 'the only case',
    confirm: confirm.cases, direction,
    rule: {
      stopping_rule: rule,
      classification: 'midpoint M of range L..H, at each look: a = L -> M, b = M -> H (moves judged by the stopping rule; survival: exact sign test at the look\'s level, '
        + `same when no round differs after ${SURVIVAL_SAME_MIN_ROUNDS}). like L (good): a same (or away from BAD), or b moved toward BAD while a did not; like H (bad): the mirror image; `
        + 'both moved: between (gradual, no single commit); neither by the last look (the cap): undecided, left out as a failed build is',
      cap_rounds: rule.looks.at(-1),
    },
    answer: ans ?? { kind: 'no difference' },
    culprit, headline, path: path_, steps: steps.map(({ values: _values, ...s }) => s),
    steps_taken: bisectSteps.length, steps_expected: expectedSteps(n), total_seconds: Math.round(totalSeconds), ended_at: new Date().toISOString(),
  };
  writeFileAtomic(path.join(dir, 'bisect.json'), JSON.stringify(json, null, 2) + '\n');
  const points: BisectPoint[] = path_.filter((p) => p.class !== 'skip').map((p) => ({
    commit: `${p.ref.slice(0, 12)}`, order: p.index, culprit: p.culprit, class: String(p.class),
    ...scaled(metric, path_[0].value, p.index === 0 ? { estimate: 0, lo: 0, hi: 0 } : p.vs_good),
  }));
  const chart = points.some((p) => p.value !== null) ? 'bisect.svg' : null;
  if (chart) writeFileAtomic(path.join(dir, chart), await bisectChartSvg(points, `${metric.name} (${metric.unit}) against GOOD, 95% interval`, culprit ? `culprit ${culprit.commit.slice(0, 12)}` : null));
  const fmt = (x: number | null) => (x === null ? '–' : metric.kind === 'rate' ? `${(x * 100).toFixed(0)}%` : Math.abs(x) >= 1e5 ? `${(x / 2 ** 20).toFixed(1)} MiB` : x.toPrecision(4));
  const view = {
    ...json, chart, metricName: metric.name, good: plan.good, bad: plan.bad, totalMinutes: (totalSeconds / 60).toFixed(1),
    culpritShort: culprit?.commit.slice(0, 12), parentShort: culprit?.parent.slice(0, 12),
    pathRows: path_.map((p) => ({
      ...p, short: p.commit.slice(0, 12), value: fmt(p.value), vs: p.vs_good ? `${p.vs_good.text}${p.vs_good.via ? ` (via ${p.vs_good.via.slice(0, 12)})` : ''}` : p.index === 0 ? '(GOOD)' : '–',
      mark: p.culprit ? ' **culprit**' : '', note: p.build_error ? `build failed: ${p.build_error}` : '', minutes: (p.seconds / 60).toFixed(1),
    })),
    stepRows: steps.map((s) => ({
      step: s.step, kind: s.kind, what: s.sides.map((i) => refName(plan, i)).join(', '), class: s.class ?? '–', rounds: s.rounds, minutes: (s.seconds / 60).toFixed(1), folder: s.folder ?? '–',
      judged: s.judgements.map((x) => `${refName(plan, s.sides[x.from])} -> ${refName(plan, s.sides[x.to])}: ${moveWords(metric, x.move)} ${formatChange(metric, x)}`).join('; ') || (s.build_error ? `build failed: ${s.build_error}` : '–'),
    })),
  };
  writeFileAtomic(path.join(dir, 'bisect.md'), Mustache.render(fs.readFileSync(path.join(SUITE_DIR, 'templates', 'bisect.md.mustache'), 'utf8'), view, undefined, { escape: (s: string) => s }));
  io.stderr.write(`${headline}\n${bisectSteps.length} steps (ceil(log2 ${n}) = ${expectedSteps(n)}), ${(totalSeconds / 60).toFixed(1)} min measured\n`);
  io.stdout.write(`${dir}\n`);
  return !ans || ans.kind === 'culprit' ? 0 : 1;
}

/** "100MiB at 512 MB" (x4 for four uploads at once) for a caseKey. */
function caseLabel(m: Matrix, key: string | null): string {
  const c = expandCases(m).find((x) => caseKey(x) === key);
  return c ? `${c.size.label} at ${c.memoryMb} MB${(c.concurrency ?? 1) > 1 ? ` x${c.concurrency}` : ''}` : String(key);
}

/** A point of the chart on the metric's own scale: GOOD's value moved by the change against GOOD (ratio: times exp; rate: plus). */
function scaled(metric: BisectMetric, good: number | null, c: { estimate: number; lo: number; hi: number } | null) {
  if (good === null || !c) return { value: null, lo: null, hi: null };
  const f = (x: number) => {
    const v = metric.kind === 'ratio' ? good * Math.exp(x) : good + x;
    const u = metric.unit === 'MiB' ? v / 2 ** 20 : v;
    return Number.isFinite(u) ? u : null;
  };
  return { value: f(c.estimate), lo: f(c.lo), hi: f(c.hi) };
}

/** --ref A..B: A, then each first-parent commit after it up to B (with --every N every Nth, B always), named by short hash. */
export async function expandRefRanges(m: Matrix, refs: string[], range: Options['range']): Promise<string[]> {
  if (!refs.some((r) => r.includes('..'))) return refs;
  const source = path.resolve(m.server.kind === 'source' ? m.server.source : process.cwd());
  const out: string[] = [];
  for (const r of refs) {
    if (!r.includes('..')) { out.push(r); continue; }
    const [a, b] = r.split('..');
    if (!a || !b || r.includes('...')) throw new InputError(`--ref ${r}: a range is A..B, with both ends`);
    const commits = await rangeCommits(source, a, b, range.firstParent);
    const inner = commits.slice(1, -1).filter((_, i) => (i + 1) % range.every === 0);
    out.push(a, ...inner.map((c) => c.commit.slice(0, 12)), b);
  }
  return out;
}
