// Uploads one file with the suite's client and prints a JSON line with the
// result and this process's own peak RSS (VmHWM): how the client's memory is
// measured, in a process of its own so nothing else is counted.
//   node --import tsx bench/upload-once.mts URL SECRET FILE
import fs from 'node:fs';
import { authenticate, closeClient, upload } from '../lib/client.ts';

const [url, secret, file] = process.argv.slice(2);
if (!url || !secret || !file) {
  process.stderr.write('usage: upload-once.mts URL SECRET FILE\n');
  process.exit(2);
}
const cookie = await authenticate(url, secret);
const cpu0 = process.cpuUsage();
const r = await upload({ baseUrl: url, cookie, file, timeoutMs: 3_600_000 });
const cpu = process.cpuUsage(cpu0);
await closeClient();
const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]) * 1024;
process.stdout.write(`${JSON.stringify({
  status: r.status, id: r.id, durationSeconds: r.durationSeconds, transferSeconds: r.transferSeconds,
  processingSeconds: r.processingSeconds, bodyBytesSent: r.bodyBytesSent, contentLength: r.contentLength,
  error: r.error?.message ?? null, peakRssBytes: hwm, cpuSeconds: (cpu.user + cpu.system) / 1e6,
})}\n`);
