// ./run-tests --memory-floor: per file size (x uploads at once) and server,
// the smallest memory limit every try survives, by bisection (lib/stats/floor.ts
// decides each next probe). Each probe is a fresh environment at its limit,
// brought up and run through the matrix loop (lib/runner.ts) and the ordinary
// iteration (lib/iteration.ts), so every try is a raw.csv row with its limit,
// failure phase and the kernel's lines in failures.log. One results folder per
// server (inside a parent folder for two or more); floor.md, floor.json and
// floor.svg in the folder named last on stdout. --resume reads the probes back.
//   cd picoshare && ../suite/run-tests --memory-floor --ref 1.2.0 --ref v1.5.4 --sizes 500MiB
import fs from 'node:fs';
import path from 'node:path';
import { closeClient } from './client.ts';
import { floorChartSvg, type FloorPoint } from './render/charts.ts';
import { searchKey } from './cases.ts';
import { InputError, type Io } from './errors.ts';
import { describeFloor, floorOf, nextProbe, probesFromRows, worstCase, type FloorSettings } from './stats/floor.ts';
import { compareServers, floorCompareJson, floorExitCode, floorJson, floorReportSection, renderFloorCompareMd, renderFloorMd, type FloorEntry } from './render/floor-report.ts';
import { hostFingerprint } from './providers/host.ts';
import { Interrupts } from './interrupts.ts';
import { AuthRejected, runIteration, type IterationOutcome } from './iteration.ts';
import { lockRunDir, unlockRunDir } from './lock.ts';
import type { Case, Matrix } from './matrix.ts';
import type { Options } from './options.ts';
import { SUITE_DIR } from './paths.ts';
import { Progress } from './progress.ts';
import type { Provider } from './providers/provider.ts';
import { writeReportFiles } from './report-files.ts';
import { appendFailure, appendRawRow, appendSamples, createRunDir, writeConfig, writeFileAtomic } from './results.ts';
import type { TestFile } from './testfiles.ts';
import { mergeResumedRecord } from './resume.ts';
import { matrixFromRecord, matrixRecord, newRunRecord, transitions, type RunRecord } from './run-record.ts';
import { makeProvider, preflight, prepareGuestImage, prepareServers, prepareTestFiles, sharedSecret, sideFolderNames, vmFailedOutcome, type Side, type SideRun } from './run.ts';
import { runMatrix } from './runner.ts';
import { configuredBox } from './providers/vagrant.ts';

/** The searches of a matrix: each file size at each concurrency, in matrix order. */
function searches(m: Matrix): { size: Matrix['sizes'][number]; concurrency: number }[] {
  return m.sizes.flatMap((size) => m.concurrency.map((concurrency) => ({ size, concurrency })));
}

/** Assumed costs for the VM estimate: boot to ready and the rate each way, from docs/vm-notes (TCG here; KVM boots in about 10 s). */
const VM_COSTS = { qemu: { bootSeconds: 30, mibPerSecond: 15 }, vagrant: { bootSeconds: 60, mibPerSecond: 15 } } as const;

/** The plan a VM provider prints before it starts: every search's worst case in VM boots and tries, and the time that takes. */
export function floorPlan(s: FloorSettings, m: Matrix, servers: number, provider: 'qemu' | 'vagrant'): string[] {
  const w = worstCase(s);
  const c = VM_COSTS[provider];
  const list = searches(m);
  const trySeconds = (bytes: number, n: number) => 10 + (2 * n * bytes) / 2 ** 20 / c.mibPerSecond; // start + upload + download
  const seconds = servers * list.reduce((sum, x) => sum + w.probes * c.bootSeconds + w.tries * trySeconds(x.size.bytes, x.concurrency), 0);
  return [
    `plan: ${list.length * servers} search${list.length * servers > 1 ? 'es' : ''} (${list.map((x) => x.size.label + (x.concurrency > 1 ? ` x${x.concurrency}` : '')).join(', ')}; ${servers} server${servers > 1 ? 's' : ''}), ` +
      `${s.bottomMb}..${s.topMb} MB, ${s.tries} tries: each at most ${w.probes} probes (a ${provider} VM boot each, the guest image reused) and ${w.tries} tries`,
    `estimate: at most ${(seconds / 60).toFixed(0)} min (assumed: boot ${c.bootSeconds} s, ${c.mibPerSecond} MiB/s each way, 10 s to start a server; a floor near the range's ends costs fewer probes)`,
  ];
}

export async function memoryFloor(opts: Options, argv: string[], io: Io): Promise<number> {
  const s = opts.floor!;
  const m = opts.matrix;
  const progress = new Progress(io.stderr), say = (line: string) => progress.line(line);
  const resumed = opts.floorResume;
  if (resumed && resumed.every((r) => r.record.finished)) {
    say(`${resumed[0].record.floor!.parent ?? resumed[0].dir} already finished: nothing to resume, nothing changed`);
    return io.stdout.write(`${resumed[0].record.floor!.parent ?? resumed[0].dir}\n`), 0;
  }
  preflight(m);
  const interrupts = new Interrupts(say).install();
  try {
    const stopped = () => interrupts.received !== null;
    const cases: Case[] = searches(m).map((x) => ({ memoryMb: s.topMb, size: x.size, concurrency: x.concurrency, iteration: 1 }));
    const prepared = await (async () => {
      const sides = resumed ? await resumedSides(resumed.map((r) => r.record), progress) : await prepareServers(m, opts.refs, opts.binaries, progress);
      const files = await prepareTestFiles(m, cases, progress, stopped);
      return files && !stopped() ? { sides, files, image: await prepareGuestImage(m, say), secret: sharedSecret(say) } : null;
    })().catch((e: unknown) => { if (stopped()) return null; throw e; });
    if (!prepared || stopped()) return interrupts.exitCode() ?? 1;
    if (m.provider !== 'local') for (const line of floorPlan(s, m, prepared.sides.length, m.provider)) say(line);

    const run = openFloorRun(opts, argv, prepared.sides, say);
    const provider = makeProvider(m, prepared.sides[0].spec, prepared.secret, prepared.image, { signal: interrupts.signal, say });
    interrupts.startRun((sig) => { for (const x of run.sides) x.record = transitions.interrupted(x.record, `interrupted by ${sig}`); }, () => provider.waitingFor());
    const t0 = Date.now();
    try {
      // Size by size, every server at each: a run cut short still compares the servers at the sizes it reached.
      for (const x of searches(m)) {
        for (const side of run.sides) {
          if (interrupts.signal.aborted) break;
          await search(side, x.size, x.concurrency, s, provider, { m, files: prepared.files, secret: prepared.secret, signal: interrupts.signal, progress });
        }
      }
      if (!interrupts.signal.aborted) for (const x of run.sides) x.record = transitions.finished(x.record);
    } catch (e) {
      if (e instanceof AuthRejected) {
        for (const x of run.sides) x.record = transitions.interrupted(x.record, e.message);
        throw new InputError(e.message);
      }
      if (!interrupts.signal.aborted) {
        for (const x of run.sides) x.record = transitions.interrupted(x.record, `suite error: ${(e as Error).message.split('\n')[0]}`);
        throw e;
      }
    } finally {
      await provider.close();
      await closeClient();
      await closeFloorRun(run, s, m, io);
    }
    say(`memory floor: ${((Date.now() - t0) / 60000).toFixed(1)} min${resumed ? ' (this resume)' : ''}`);
    return interrupts.exitCode() ?? run.exitCode;
  } finally {
    interrupts.uninstall();
  }
}

/** A resumed run's servers, as its config.json records them: the same ref (rebuilt from cache), binary or stand-in knobs. */
async function resumedSides(records: RunRecord[], progress: Progress): Promise<Side[]> {
  const out: Side[] = [];
  for (const r of records) {
    const m = matrixFromRecord(r, 'config.json');
    const ref = r.server.kind === 'source' ? r.server.build?.ref : undefined;
    const [side] = await prepareServers(m, ref ? [ref] : [], [], progress, r.server.standin_env);
    out.push({ ...side, name: r.floor!.servers[r.floor!.this_server] });
  }
  return out;
}

interface FloorRun { sides: SideRun[]; parent: string | null; exitCode: number }

/** The folders: one per server (in a parent folder for two or more), each with its config.json; a resume reopens them. */
function openFloorRun(opts: Options, argv: string[], sides: Side[], say: (line: string) => void): FloorRun {
  const s = opts.floor!, m = opts.matrix;
  const resumed = opts.floorResume;
  let parent: string | null;
  let dirs: string[];
  if (resumed) {
    parent = resumed[0].record.floor!.parent;
    if (parent) lockRunDir(parent);
    dirs = resumed.map((r) => r.dir);
  } else {
    parent = sides.length > 1 ? createRunDir(opts.out) : null;
    dirs = parent ? sideFolderNames(sides.map((x) => x.name)).map((n) => { const d = path.join(parent!, n); fs.mkdirSync(d); lockRunDir(d); return d; }) : [createRunDir(opts.out)];
  }
  const suiteVersion = (JSON.parse(fs.readFileSync(path.join(SUITE_DIR, 'package.json'), 'utf8')) as { version: string }).version;
  const runs = sides.map((side, i): SideRun => {
    const fresh = newRunRecord({
      suite_version: suiteVersion, suite_git: null, command: argv, matrix_file: opts.matrixFile,
      started_at: new Date().toISOString(), provider: m.provider, server: side.record,
      matrix: matrixRecord(m, configuredBox(m.vmBox)), host: hostFingerprint(),
      floor: { bottom_mb: s.bottomMb, top_mb: s.topMb, tries: s.tries, servers: sides.map((x) => x.name), this_server: i, parent, searches: [] },
    });
    if (!resumed) return { side, dir: dirs[i], rows: [], record: fresh };
    const merged = mergeResumedRecord(resumed[i].record, fresh);
    for (const w of merged.warnings) say(`WARNING: resuming ${dirs[i]}: ${w}`);
    return { side, dir: dirs[i], rows: [...resumed[i].rows], record: merged.record };
  });
  for (const r of runs) {
    writeConfig(r.dir, r.record);
    say(`results${runs.length > 1 ? ` for ${r.side.name}` : ''}: ${r.dir}${resumed ? ` (resuming: ${r.rows.length} rows so far)` : ''}`);
  }
  return { sides: runs, parent, exitCode: 0 };
}

interface SearchContext {
  m: Matrix;
  files: Map<number, TestFile>;
  secret: string;
  signal: AbortSignal;
  progress: Progress;
}

/** One search: probes (each a fresh environment at its limit) until lib/stats/floor.ts says the bracket is narrow enough. */
async function search(run: SideRun, size: Matrix['sizes'][number], concurrency: number, s: FloorSettings, provider: Provider, ctx: SearchContext): Promise<void> {
  const mine = () => run.rows.filter((r) => r.file_size_bytes === size.bytes && r.concurrency === concurrency);
  const key = searchKey({ file_size_bytes: size.bytes, concurrency });
  const f = run.record.floor!;
  let entry = f.searches.find((e) => searchKey(e) === key);
  if (!entry) f.searches.push(entry = { file_size_bytes: size.bytes, concurrency, seconds: 0 });
  const name = `${run.side.name} ${size.label}${concurrency > 1 ? ` x${concurrency}` : ''}`;
  for (let next = nextProbe(s, probesFromRows(mine())); next && !ctx.signal.aborted; next = nextProbe(s, probesFromRows(mine()))) {
    const t0 = Date.now();
    const limit = next.limitMb;
    const done = probesFromRows(mine()).find((p) => p.limitMb === limit)?.passed ?? 0;
    const jobs = Array.from({ length: next.tries }, (_, t) => ({ case: { memoryMb: limit, size, concurrency, iteration: done + t + 1 }, side: 0 }));
    let failed = false;
    // Near its floor a server can thrash (a cgroup at its limit reclaiming page cache) for as long as the upload timeout
    // allows: once a try has survived, one taking 10 times its time (at least 60 s) does not survive in any useful sense.
    const successes = mine().filter((r) => r.exit_reason === 'success').map((r) => r.duration_seconds + (r.download_mib_s ? size.bytes / 2 ** 20 / r.download_mib_s : 0));
    const timeoutSeconds = successes.length ? Math.min(ctx.m.uploadTimeoutSeconds, Math.max(60, Math.ceil(10 * Math.max(...successes)))) : ctx.m.uploadTimeoutSeconds;
    const record = (o: IterationOutcome) => {
      const rows = o.rows ?? [o.row];
      run.rows.push(...rows);
      for (const r of rows) appendRawRow(run.dir, r);
      if (o.samples?.length) appendSamples(run.dir, o.samples);
      if (o.failure) appendFailure(run.dir, o.failure);
      failed ||= o.row.exit_reason !== 'success';
      const r = o.row;
      ctx.progress.line(`${name} at ${limit} MB, try ${r.iteration}: ${r.exit_reason}${r.failure_phase ? ` (${r.failure_phase})` : ''} ${r.duration_seconds.toFixed(2)} s${r.error ? ` (${r.error})` : ''}`);
    };
    await runMatrix(jobs, {
      up: async (memoryMb) => {
        const env = await provider.up(memoryMb);
        run.record = transitions.environmentUp(run.record, memoryMb, env.facts);
        return env;
      },
      runCase: (env, j) => runIteration({
        env, testCase: j.case, file: ctx.files.get(size.bytes)!, server: run.side.spec, secret: ctx.secret, signal: ctx.signal,
        uploadTimeoutSeconds: timeoutSeconds * env.timeoutFactor, authTimeoutSeconds: ctx.m.readinessTimeoutSeconds * env.timeoutFactor,
        progress: ctx.progress.upload(`${name} at ${limit} MB, try ${j.case.iteration}`, size.bytes * concurrency),
      }),
      record,
      // An environment that cannot come up at this limit is the probe's failure (one row: the probe ends there).
      envFailed: (memoryMb, error, group) => { if (group[0]) record(vmFailedOutcome(group[0].case, memoryMb, error)); },
      stopped: () => ctx.signal.aborted,
      skip: () => failed, // k of k: the first failure decides the limit
    });
    entry.seconds += (Date.now() - t0) / 1000;
    writeConfig(run.dir, run.record);
    const now = floorOf(s, probesFromRows(mine()));
    ctx.progress.line(`${name}: ${limit} MB ${failed ? 'failed' : ctx.signal.aborted ? 'interrupted' : 'passed'}; bracket (${now.highestFailingMb ?? '–'}, ${now.floorMb ?? '–'}] MB`);
  }
}

/** Every folder closed: config.json, report.md with its floor section, and floor.md/json/svg (plus compare*) in the outer folder. */
async function closeFloorRun(run: FloorRun, s: FloorSettings, m: Matrix, io: Io): Promise<void> {
  const entries: FloorEntry[] = run.sides.flatMap((x) => searches(m).map(({ size, concurrency }) => {
    const rows = x.rows.filter((r) => r.file_size_bytes === size.bytes && r.concurrency === concurrency);
    const seconds = x.record.floor!.searches.find((e) => searchKey(e) === searchKey({ file_size_bytes: size.bytes, concurrency }))?.seconds ?? 0;
    return { server: x.side.name, fileSize: size.label, fileSizeBytes: size.bytes, concurrency, seconds, result: floorOf(s, probesFromRows(rows)) };
  }));
  const servers = run.sides.map((x) => x.side.name);
  const comparisons = compareServers(s, entries, servers);
  const out = run.parent ?? run.sides[0].dir;
  const points: FloorPoint[] = entries.filter((e) => e.result.status !== 'incomplete').map((e) => ({
    server: e.server, order: servers.indexOf(e.server), size_mib: (e.fileSizeBytes * e.concurrency) / 2 ** 20, file_size: e.fileSize + (e.concurrency > 1 ? ` ×${e.concurrency}` : ''),
    floor_mb: e.result.floorMb, label: e.result.status === 'no-floor' ? `no floor ≤ ${s.topMb}` : e.result.status === 'at-bottom' ? `≤ ${s.bottomMb}` : `${e.result.floorMb}`,
  }));
  const chart = points.length ? 'floor.svg' : null;
  if (chart) writeFileAtomic(path.join(out, chart), await floorChartSvg(points, m.memoryLimitsMb, s.topMb));
  const floorMd = renderFloorMd(s, entries, comparisons, chart, fs.readFileSync(path.join(SUITE_DIR, 'templates', 'floor.md.mustache'), 'utf8'));
  writeFileAtomic(path.join(out, 'floor.md'), floorMd);
  writeFileAtomic(path.join(out, 'floor.json'), `${JSON.stringify(floorJson(s, entries, m.memoryLimitsMb), null, 2)}\n`);
  for (const [i, c] of comparisons.entries()) {
    const dir = path.join(run.parent!, run.sides.length > 2 ? `compare-${path.basename(run.sides[i + 1].dir)}` : 'compare');
    fs.mkdirSync(dir, { recursive: true });
    writeFileAtomic(path.join(dir, 'compare.md'), renderFloorCompareMd(servers[0], c.server, c.cases));
    writeFileAtomic(path.join(dir, 'compare.json'), `${JSON.stringify(floorCompareJson(servers[0], c.server, c.cases), null, 2)}\n`);
  }
  for (const x of run.sides) {
    x.record = transitions.closed(x.record, new Date().toISOString());
    writeConfig(x.dir, x.record);
    await writeReportFiles(x.dir, x.rows, x.record);
    const rel = path.relative(x.dir, path.join(out, 'floor.md')) || 'floor.md';
    fs.appendFileSync(path.join(x.dir, 'report.md'), floorReportSection(s, entries.filter((e) => e.server === x.side.name), rel));
    unlockRunDir(x.dir);
  }
  if (run.parent) unlockRunDir(run.parent);
  for (const e of entries) io.stderr.write(`floor: ${e.server} ${e.fileSize}${e.concurrency > 1 ? ` x${e.concurrency}` : ''}: ${renderLine(s, e)}\n`);
  for (const c of comparisons) for (const x of c.cases) io.stderr.write(`compare: ${c.server} against ${servers[0]} at ${x.fileSize}: ${x.verdict}\n`);
  run.exitCode = floorExitCode(entries, comparisons);
  io.stdout.write(`${out}\n`);
}

function renderLine(s: FloorSettings, e: FloorEntry): string {
  return `${describeFloor(s, e.result)} in ${(e.seconds / 60).toFixed(1)} min, ${e.result.probes.length} probes`;
}
