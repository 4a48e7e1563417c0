// The client against a real stand-in: the hand-built multipart body round-trips
// byte for byte, exactly content-length bytes are sent, and the client's memory
// stays flat for a file far larger than its read size.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { AuthError, authenticate, deleteEntry, downloadSha256, multipartFraming, upload } from '../lib/client.ts';
import { LocalProvider } from '../lib/providers/local.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import type { Environment } from '../lib/providers/provider.ts';
import { ensureTestFile } from '../lib/testfiles.ts';
import { MiB } from '../lib/units.ts';

const SECRET = 'client-test-secret';
let env: Environment;
let url: string;

before(async () => {
  env = await new LocalProvider({ server: { kind: 'standin', env: {} }, secret: SECRET, readinessTimeoutSeconds: 30 }, { say: () => {} }).up(4096);
  url = await env.startServer();
});
after(async () => { await env.down(); });

test('multipart framing is exact', { timeout: 300_000 }, () => {
  const { preamble, epilogue, contentType } = multipartFraming('a.bin', 'XyZ');
  assert.equal(preamble.toString(), '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n');
  assert.equal(epilogue.toString(), '\r\n--XyZ--\r\n');
  assert.equal(contentType, 'multipart/form-data; boundary=XyZ');
});

test('upload: sha256 round trip, bytes sent = content-length, delete', { timeout: 300_000 }, async () => {
  const file = await ensureTestFile(24 * MiB + 123); // not a multiple of the 1 MiB read size
  const cookie = await authenticate(url, SECRET);
  let lastProgress = 0;
  const r = await upload({ baseUrl: url, cookie, file: file.path, timeoutMs: 60_000, onProgress: (n) => { lastProgress = n; } });
  assert.equal(r.status, 200, r.body);
  assert.match(r.id ?? '', /^[a-km-zA-HJ-NP-Z2-9]{10}$/);
  assert.equal(r.bodyBytesSent, r.contentLength);
  const framing = multipartFraming(path.basename(file.path), 'b'.repeat(31)); // the client's boundary is 31 characters
  assert.equal(r.contentLength, framing.preamble.length + file.bytes + framing.epilogue.length);
  assert.equal(lastProgress, file.bytes);
  assert.ok(r.transferSeconds! > 0 && r.processingSeconds! >= 0);
  assert.ok(Math.abs(r.transferSeconds! + r.processingSeconds! - r.durationSeconds) < 0.05);
  const received: number[] = [];
  const d = await downloadSha256(url, r.id!, 60_000, '-', undefined, (n) => received.push(n));
  assert.equal(d.status, 200);
  assert.ok(received.length > 1 && received.every((n, i) => i === 0 || n > received[i - 1]), 'progress rises with every chunk');
  assert.equal(received.at(-1), file.bytes);
  assert.equal(d.bytes, file.bytes);
  assert.equal(d.sha256, file.sha256);
  assert.equal(await deleteEntry(url, cookie, r.id!), 200);
  assert.equal((await downloadSha256(url, r.id!, 10_000)).status, 404);
});

test('a wrong secret is an AuthError naming the rejection', { timeout: 300_000 }, async () => {
  await assert.rejects(authenticate(url, 'wrong'), (e: Error) => e instanceof AuthError && /authentication rejected/.test(e.message));
});

test('client peak RSS stays flat: 64 MiB and 256 MiB uploads peak alike, under 200 MiB', { timeout: 300_000 }, async () => {
  const peak = async (bytes: number) => {
    const file = await ensureTestFile(bytes);
    const out = execFileSync(process.execPath, ['--import', 'tsx', `${SUITE_DIR}/bench/upload-once.mts`, url, SECRET, file.path], { cwd: SUITE_DIR, encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').at(-1)!);
    assert.equal(r.status, 200);
    assert.equal(r.bodyBytesSent, r.contentLength);
    return r.peakRssBytes as number;
  };
  const small = await peak(64 * MiB); // past the first GC cycles: below that, garbage 1 MiB buffers are still piling up
  const large = await peak(256 * MiB);
  assert.ok(large < 200 * MiB, `client peak RSS ${(large / MiB).toFixed(1)} MiB at 256 MiB`);
  assert.ok(large - small < 32 * MiB, `client RSS grew with file size: ${(small / MiB).toFixed(1)} -> ${(large / MiB).toFixed(1)} MiB`);
});
