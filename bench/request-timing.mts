// Preloaded into a run-tests process by the benchmark (node --import): records
// when every undici request started and ended, through undici's diagnostics
// channels, and writes them as JSON to $UPS_BENCH_TIMINGS when the process
// exits. Lets the benchmark split a real run's wall time into uploads,
// verification downloads and everything else, without touching the run path.
//   UPS_BENCH_TIMINGS=t.json node --import tsx --import ./bench/request-timing.mts run-tests.mts ...
import diagnostics from 'node:diagnostics_channel';
import fs from 'node:fs';
import type { Timing } from './figures.ts';

const out = process.env.UPS_BENCH_TIMINGS;
if (out) {
  const started = new WeakMap<object, number>();
  const timings: Timing[] = [];
  const finish = (request: { method: string; path: string }, ok: boolean) => {
    const startMs = started.get(request);
    if (startMs !== undefined) timings.push({ method: request.method, path: request.path, startMs, endMs: performance.now(), ok });
  };
  diagnostics.subscribe('undici:request:create', (m) => { started.set((m as { request: object }).request, performance.now()); });
  diagnostics.subscribe('undici:request:trailers', (m) => finish((m as { request: { method: string; path: string } }).request, true));
  diagnostics.subscribe('undici:request:error', (m) => finish((m as { request: { method: string; path: string } }).request, false));
  process.on('exit', () => fs.writeFileSync(out, JSON.stringify({ processStartMs: 0, exitMs: performance.now(), timings })));
}
