// One iteration of one case: fresh server, sample, authenticate, upload (the
// case's concurrency: N uploads of the same file started together), classify,
// verify, delete. Returns one raw.csv row per upload, the memory timeline and,
// for a failure, the failures.log entry. Never throws for a server failure:
// that is a result.
import fs from 'node:fs';
import { caseRunLabel } from './cases.ts';
import { newRow } from './row.ts';
import { AuthError, authenticate, deleteEntry, downloadSha256, findDownloadRoute, upload, type DownloadResult, type UploadResult } from './client.ts';
import type { Case } from './matrix.ts';
import type { Environment, MemorySample, ServerSpec, TimelinePoint } from './providers/provider.ts';
import { NotReady } from './providers/server.ts';
import type { ExitReason, FailurePhase, RawRow, SampleRow } from './results.ts';
import type { TestFile } from './testfiles.ts';
import type { UploadProgress } from './progress.ts';
import { MiB } from './units.ts';
import { applyNoiseCuts, type NoiseCut } from './noise-cuts.ts';

export interface IterationContext {
  env: Environment;
  testCase: Case;
  file: TestFile;
  /** The server to start instead of the environment's own (one side of an A/B run). */
  server?: ServerSpec;
  secret: string;
  uploadTimeoutSeconds: number;
  /** Deadline for POST /api/auth; a server that hangs there is a `timeout` row, not a run that hangs. */
  authTimeoutSeconds: number;
  progress?: UploadProgress;
  signal?: AbortSignal;
  /** Done after authentication, right before the measured upload (lib/noise-cuts.ts); absent: none. */
  noiseCuts?: NoiseCut[];
  /** The small file warm-upload sends first. */
  warmFile?: TestFile;
}

export interface IterationOutcome {
  /** The row that speaks for the iteration: the first failed upload's, else the first upload's (rows[0] for one upload). */
  row: RawRow;
  /** One row per upload started together (the case's concurrency), in start order; absent means [row]. */
  rows?: RawRow[];
  /** failures.log entry, for anything but success. */
  failure: string | null;
  /** The memory timeline of the iteration, for samples.csv; absent or empty when no upload was made. */
  samples?: SampleRow[];
  /** For a not_ready row: what the server did instead of answering GET / with 200 (lib/failfast.ts compares these). */
  notReadyAnswer?: string;
}

/** Thrown when the server rejects the run's own secret: no case can succeed, so the run stops at once. */
export class AuthRejected extends Error {}

/** Names why an upload failed, most specific first: the kernel's OOM kill explains a dead server and a cut connection. */
export function classify(u: UploadResult, sample: MemorySample, alive: boolean): ExitReason {
  if (sample.oomKills > 0) return 'oom_killed';
  if (!alive) return 'process_died';
  if (u.timedOut) return 'timeout';
  if (u.error || u.status !== 200 || !u.id) return 'http_error';
  return 'success';
}

/**
 * `p`, or a rejection as soon as `signal` aborts: a server that is slow to get
 * ready must not hold a Ctrl-C for its whole readiness timeout. `p` is left
 * running; the environment's teardown stops the server it waits on.
 */
function unlessAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  p.catch(() => {}); // its rejection, after an abort, has nobody left to tell
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('interrupted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export async function runIteration(ctx: IterationContext): Promise<IterationOutcome> {
  const { env, testCase, file } = ctx;
  const n = testCase.concurrency ?? 1;
  const startedAt = new Date().toISOString();
  const base = newRow(testCase, startedAt);
  const caseName = `${caseRunLabel(testCase.size.label, { memoryMb: testCase.memoryMb, concurrency: n })} iteration ${testCase.iteration}`;
  // The kernel's OOM kills are counted over the whole iteration, not only the upload's sample: a server
  // killed for memory while starting or while its upload is read back has not survived either.
  const oomMark = await env.oomKills();
  const oomSince = async () => (await env.oomKills()) - oomMark;
  /** A server that failed before any upload (never ready, killed, or failing at auth): rows of no duration, with its log tail. */
  const failedBeforeUpload = async (reason: ExitReason, error: string): Promise<IterationOutcome> => {
    const kills = await oomSince();
    const [r, e] = kills > 0 ? ['oom_killed' as const, `killed for memory while starting: ${error}`] : [reason, error];
    const rows = Array.from({ length: n }, (): RawRow => ({ ...base, duration_seconds: 0, exit_reason: r, error: e, failure_phase: 'start' }));
    const tail = await env.serverLogTail(40, { withoutReadinessPolls: r === 'not_ready' });
    return { row: rows[0], rows, samples: [], failure: failureText(caseName, r, 'start', e, [], tail, kills > 0 ? await env.oomLines(kills) : []) };
  };

  let url: string;
  try {
    url = await unlessAborted(env.startServer(ctx.server), ctx.signal);
  } catch (e) {
    if (ctx.signal?.aborted) throw new Error('interrupted'); // not a result: no row, the case stays to be run
    const notReady = await failedBeforeUpload('not_ready', (e as Error).message.split('\n')[0]);
    return { ...notReady, notReadyAnswer: e instanceof NotReady ? e.answer : (e as Error).message.split('\n')[0] };
  }

  // undici's own timeouts are off (see client.ts): without this deadline a server that hangs here holds the run forever.
  const authDeadline = AbortSignal.timeout(ctx.authTimeoutSeconds * 1000);
  let cookie: string;
  try {
    cookie = await authenticate(url, ctx.secret, ctx.signal ? AbortSignal.any([authDeadline, ctx.signal]) : authDeadline);
  } catch (e) {
    if (ctx.signal?.aborted) throw new Error('interrupted');
    if (e instanceof AuthError) throw new AuthRejected(e.message);
    // Anything else is the server failing (an error status, dying, hanging): a result, and the run goes on.
    const timedOut = authDeadline.aborted; // before settle(), which could outlast a short deadline
    await settle(env);
    const alive = await env.serverAlive();
    return failedBeforeUpload(!alive ? 'process_died' : timedOut ? 'timeout' : 'http_error',
      `authentication failed: ${timedOut ? `no answer within ${ctx.authTimeoutSeconds} s` : (e as Error).message.split('\n')[0]}`);
  }

  if (ctx.noiseCuts?.length) {
    await applyNoiseCuts(ctx.noiseCuts, {
      serverPid: env.serverPid?.() ?? null, fileBytes: file.bytes * n,
      warm: async () => {
        if (!ctx.warmFile) return;
        const w = await upload({ baseUrl: url, cookie, file: ctx.warmFile.path, timeoutMs: ctx.uploadTimeoutSeconds * 1000, signal: ctx.signal });
        if (w.id) await deleteEntry(url, cookie, w.id).catch(() => { /* a fresh data folder next time anyway */ });
      },
    });
  }
  await env.startSampling();
  const samplingStarted = performance.now();
  const pressureBefore = cpuPressureTotalUs();
  // N uploads at once: the progress line shows their sum.
  const sent = new Array<number>(n).fill(0);
  const requestStart = performance.now();
  const uploads = await Promise.all(sent.map((_, i) => upload({
    baseUrl: url, cookie, file: file.path, timeoutMs: ctx.uploadTimeoutSeconds * 1000, signal: ctx.signal,
    onProgress: ctx.progress && ((bytes) => { sent[i] = bytes; ctx.progress!.update(sent.reduce((a, b) => a + b, 0)); }),
  })));
  ctx.progress?.done();
  const pressureAfter = cpuPressureTotalUs();
  if (uploads.some((u) => u.error) && !ctx.signal?.aborted) await settle(env);
  const alive = await env.serverAlive();
  const sample = await env.stopSampling();
  if (ctx.signal?.aborted) throw new Error('interrupted');

  const slowest = Math.max(...uploads.map((u) => u.durationSeconds));
  const rows = uploads.map((u): RawRow => {
    const exitReason = classify(u, sample, alive);
    return {
      ...base,
      duration_seconds: round(u.durationSeconds),
      peak_memory_bytes: sample.peakMemoryBytes,
      http_status: u.status,
      exit_reason: exitReason,
      transfer_seconds: u.transferSeconds === null ? null : round(u.transferSeconds),
      processing_seconds: u.processingSeconds === null ? null : round(u.processingSeconds),
      server_peak_rss_bytes: sample.serverPeakRssBytes,
      error: exitReason === 'success' ? '' : describe(u, exitReason),
      host_cpu_pressure_pct: pressureBefore === null || pressureAfter === null || slowest <= 0 ? null
        : round(Math.min(100, (pressureAfter - pressureBefore) / 1e4 / slowest)),
      server_cpu_user_seconds: roundOrNull(sample.spend.cpuUserSeconds),
      server_cpu_system_seconds: roundOrNull(sample.spend.cpuSystemSeconds),
      server_write_bytes: sample.spend.writeBytes,
      data_dir_bytes: sample.spend.dataDirBytes,
      // Body bytes left to send: the upload itself failed; all sent: the server failed working on them.
      failure_phase: exitReason === 'success' ? null : u.bodyBytesSent < u.contentLength ? 'upload' : 'processing',
    };
  });
  let oomLines = sample.oomLines;
  // Verified one at a time, after every upload has its answer: each download's speed is its own.
  // The route is found once per server start (each iteration starts its own): /-{id}, or /!{id} before PicoShare 1.3.0.
  let route: Awaited<ReturnType<typeof findDownloadRoute>> | null = null;
  // Some servers need more memory to serve a file back than to take it (PicoShare 1.1.8, 100MiB: 147 MiB up, 250 MiB
  // down): the server's peak is sampled again over the verification, so a row says what the whole iteration needed.
  const verifying = rows.some((r) => r.exit_reason === 'success');
  if (verifying) await env.startSampling();
  for (const [i, u] of uploads.entries()) {
    const row = rows[i];
    if (row.exit_reason !== 'success') continue;
    if (ctx.signal?.aborted) throw new Error('interrupted'); // a download cut by Ctrl-C is not a result: the iteration stays to be run
    const d = await (async () => {
      route ??= await findDownloadRoute(url, u.id!);
      return downloadSha256(url, u.id!, ctx.uploadTimeoutSeconds * 1000, route, ctx.signal, ctx.progress && ((b) => ctx.progress!.verify(b, file.bytes)));
    })().catch((e: Error) => e);
    if (ctx.signal?.aborted) throw new Error('interrupted');
    row.sha256_ok = !(d instanceof Error) && d.status === 200 && d.sha256 === file.sha256;
    if (row.sha256_ok) {
      const ok = d as DownloadResult;
      row.throughput_mib_s = round(file.bytes / MiB / u.durationSeconds);
      row.download_ttfb_seconds = round(ok.ttfbSeconds);
      row.download_mib_s = ok.seconds > 0 ? round(ok.bytes / MiB / ok.seconds) : null;
      await deleteEntry(url, cookie, u.id!).catch(() => { /* the server restarts on a fresh data folder anyway */ });
    } else if (d instanceof Error || d.status !== 200) {
      await settle(env); // a server killed mid-download is gone a moment after the connection
    }
    // Checked after the delete too: a server killed there did not survive the upload's aftermath either.
    const kills = await oomSince();
    const mismatch = d instanceof Error ? `download failed: ${d.message.split('\n')[0]}`
      : `download HTTP ${d.status} at /${route}${u.id}, ${d.bytes} bytes, sha256 ${d.sha256.slice(0, 16)}… != expected ${file.sha256.slice(0, 16)}…`;
    if (kills > 0) {
      row.exit_reason = 'oom_killed';
      row.throughput_mib_s = null;
      row.error = `killed for memory after the upload's 200, during verification${row.sha256_ok ? '' : ` (${mismatch})`}`;
      oomLines = await env.oomLines(kills);
    } else if (!row.sha256_ok) {
      const dead = !(await env.serverAlive());
      // A download that did not finish within the upload timeout (a server thrashing at its memory limit) is a timeout.
      const slow = !dead && d instanceof Error && d.name === 'TimeoutError';
      row.exit_reason = dead ? 'process_died' : slow ? 'timeout' : 'integrity_error';
      row.error = dead ? `the server exited during verification (${mismatch})` : slow ? `the verification download did not finish within the upload timeout (${mismatch})` : mismatch;
    }
    if (row.exit_reason !== 'success') row.failure_phase = 'verification';
  }
  const verified = verifying ? await env.stopSampling().catch(() => null) : null;
  const peaks = [sample.serverPeakRssBytes, verified?.serverPeakRssBytes ?? null].filter((x): x is number => x !== null);
  for (const r of rows) r.iteration_peak_rss_bytes = peaks.length ? Math.max(...peaks) : null;
  const samples = timelineRows(sample.timeline, (requestStart - samplingStarted) / 1000, uploads, rows[0]);
  const failed = rows.flatMap((r, i) => (r.exit_reason === 'success' ? [] : [i]));
  if (failed.length === 0) return { row: rows[0], rows, samples, failure: null };
  const tail = await env.serverLogTail(40);
  const first = rows[failed[0]];
  const detail = failed.map((i) => ({ index: i + 1, of: n, u: uploads[i], row: rows[i] }));
  return { row: first, rows, samples, failure: failureText(caseName, first.exit_reason, first.failure_phase!, first.error, detail, tail, oomLines) };
}

/**
 * The timeline as samples.csv rows: seconds since the uploads' request start (`offset` after sampling
 * began), transfer while any upload still sends its body, then processing, up to the last answer.
 */
export function timelineRows(
  points: TimelinePoint[], offset: number, uploads: Pick<UploadResult, 'transferSeconds' | 'durationSeconds'>[], key: RawRow,
): SampleRow[] {
  const transferEnd = Math.max(...uploads.map((u) => u.transferSeconds ?? u.durationSeconds));
  const end = Math.max(...uploads.map((u) => u.durationSeconds));
  // The sample taken as sampling began lands a moment before the request: it is the start.
  return points.map((p) => ({ ...p, t: p.t - offset })).filter((p) => p.t >= -0.25 && p.t <= end + 0.25)
    .map((p) => ({ ...p, t: Math.max(0, p.t) })).map((p) => ({
      memory_limit_mb: key.memory_limit_mb, file_size_bytes: key.file_size_bytes, concurrency: key.concurrency, iteration: key.iteration,
      t_seconds: round(p.t), env_memory_bytes: p.envMemoryBytes, server_rss_bytes: p.serverRssBytes, data_dir_bytes: p.dataDirBytes,
      phase: p.t <= transferEnd ? 'transfer' : 'processing',
    }));
}

/** A dead server's exit (or the kernel's OOM accounting) can lag the broken connection by a moment. */
async function settle(env: Environment): Promise<void> {
  for (let i = 0; i < 20 && (await env.serverAlive()); i++) await new Promise((r) => setTimeout(r, 50));
}

function describe(u: UploadResult, reason: ExitReason): string {
  const sent = `${u.bodyBytesSent} of ${u.contentLength} body bytes sent`;
  if (reason === 'timeout') return `no response within the upload timeout (${sent})`;
  if (u.error) return `${u.error.message.split('\n')[0]} (${sent})`;
  if (u.status !== 200) return `HTTP ${u.status}: ${u.body.split('\n')[0].slice(0, 200)}`;
  if (!u.id) return `HTTP 200 without an id: ${u.body.slice(0, 200)}`;
  return reason;
}

function failureText(
  caseName: string, reason: string, phase: FailurePhase, error: string,
  uploads: { index: number; of: number; u: UploadResult; row: RawRow }[], tail: string, oomLines: string[],
): string {
  return [
    `=== ${new Date().toISOString()} ${caseName}: ${reason}`,
    `error: ${error}`,
    `phase: ${phase}`,
    ...uploads.map(({ index, of, u, row }) => `${of > 1 ? `upload ${index} of ${of}: ${row.exit_reason}: ${row.error}; ` : ''}` +
      `http_status: ${u.status ?? '(none)'}; duration ${u.durationSeconds.toFixed(3)} s; ${u.bodyBytesSent}/${u.contentLength} bytes sent`),
    '--- kernel OOM lines:',
    ...(oomLines.length ? oomLines : ['(none)']),
    '--- server log tail:',
    tail || '(empty)',
    '',
  ].join('\n');
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;
const roundOrNull = (x: number | null) => (x === null ? null : round(x));

/**
 * Microseconds some host task has waited for a CPU since boot (PSI "some total"), or null where PSI is off.
 * Over an upload it says whether the machine, not the server, set the pace: the noise upstream's runs drowned in.
 */
function cpuPressureTotalUs(): number | null {
  try {
    const m = /^some .*total=(\d+)/m.exec(fs.readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
