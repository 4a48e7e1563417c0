// The stand-in server (lib/standin/standin.mts) as a real process on 127.0.0.1: the
// PicoShare contract it speaks, its spool-then-store upload path, and each
// fault knob observed for real.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import {
  auth, MIB, NEVER, rawRequest, removeTempDirs, SECRET, sha256, spawnStandin, spoolFiles, startStandin,
  tempDir, TSX_COMMAND, upload, vmHwmBytes, type Standin,
} from './standin-helpers.mts';
import { mountTmpfs } from './run-helpers.mts';
import { needs } from './skips.mts';

after(removeTempDirs);

describe('stand-in: its own store, spool and logs', () => {
  let s: Standin;
  let cookie: string;
  before(async () => {
    s = await startStandin();
    cookie = await auth(s.base);
  });
  after(async () => {
    await s?.stop();
  });

  // Status codes, cookie attributes and every route's answers are checked by
  // test/contract.test.mts against the stand-in and a real PicoShare alike;
  // here only what is the stand-in's own: its store, spool and logs.
  test('the auth cookie does not carry the secret in clear', async () => {
    assert.match(cookie, /^sharedSecret=.+/);
    assert.ok(!cookie.includes(SECRET) && !decodeURIComponent(cookie).includes(SECRET));
  });

  test('the store: data and metadata under DATADIR/entries, the spool gone before the response, nothing left after delete', async () => {
    const data = randomBytes(3 * MIB + 12345);
    const up = await upload(s.base, { cookie, data, filename: 'round trip.bin', contentType: 'application/x-standin-test', note: 'a note' });
    assert.equal(up.status, 200, up.text);
    const { id } = JSON.parse(up.text) as { id: string };
    for (const path of [`/-${id}`, `/-${id}/round%20trip.bin`]) {
      const res = await request(s.base + path);
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-length'], String(data.length));
      assert.equal(res.headers['content-type'], 'application/x-standin-test');
      assert.equal(sha256(Buffer.from(await res.body.arrayBuffer())), sha256(data));
    }
    const meta = JSON.parse(await readFile(join(s.dataDir, 'entries', `${id}.json`), 'utf8')) as Record<string, unknown>;
    assert.equal(meta.filename, 'round trip.bin');
    assert.equal(meta.note, 'a note');
    assert.equal(meta.size, data.length);
    assert.deepEqual(await spoolFiles(s), [], 'the spool file is deleted before the response');

    const del = await request(`${s.base}/api/entry/${id}`, { method: 'DELETE', headers: { cookie } });
    assert.equal(del.statusCode, 200);
    assert.equal(await del.body.text(), '');
    const gone = await request(`${s.base}/-${id}`);
    await gone.body.dump();
    assert.equal(gone.statusCode, 404);
    assert.deepEqual(await readdir(join(s.dataDir, 'entries')), []);
  });

  test('a bad expiration is answered before the body is read', async () => {
    // The head promises 100 MiB and asks for "100 Continue"; no body follows. A
    // final 400 (and no 100 Continue) proves the answer did not wait for the body.
    const answer = await rawRequest(
      s.port,
      `POST /api/entry HTTP/1.1\r\nHost: x\r\nCookie: ${cookie}\r\nContent-Type: multipart/form-data; boundary=b\r\n` +
        `Content-Length: ${100 * MIB}\r\nExpect: 100-continue\r\n\r\n`,
    );
    assert.match(answer, /^HTTP\/1\.1 400 /);
  });

  test('the body is only read (100 Continue) once the request is acceptable', async () => {
    const answer = await rawRequest(
      s.port,
      `POST /api/entry?expiration=${NEVER} HTTP/1.1\r\nHost: x\r\nCookie: ${cookie}\r\nContent-Type: multipart/form-data; boundary=b\r\n` +
        `Content-Length: ${100 * MIB}\r\nExpect: 100-continue\r\n\r\n`,
    );
    assert.match(answer, /^HTTP\/1\.1 100 Continue/);
  });

  test('a rejected or cut-off upload leaves no spool file behind', async () => {
    const raw = async (contentType: string, body: string) => {
      const res = await request(`${s.base}/api/entry?expiration=${NEVER}`, { method: 'POST', headers: { cookie, 'content-type': contentType }, body });
      return { status: res.statusCode, text: await res.body.text() };
    };
    const head = '--zz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n';
    assert.equal((await raw('multipart/form-data; boundary=zz', `${head}cut sh`)).status, 400);
    // Over PicoShare's 1 MiB in-memory limit, so cut off after its spool file was made.
    assert.equal((await raw('multipart/form-data; boundary=zz', `${head}${'x'.repeat(3 * 1024 * 1024)}`)).status, 400);
    assert.equal((await upload(s.base, { cookie, size: 10, note: 'n'.repeat(501) })).status, 400, 'note over 500 bytes');
    assert.deepEqual(await spoolFiles(s), []);
  });

  test('memory stays flat: a 256 MiB upload raises VmHWM by far less than its size', async (t) => {
    const before = await vmHwmBytes(s.child.pid!);
    const up = await upload(s.base, { cookie, size: 256 * MIB });
    assert.equal(up.status, 200, up.text);
    const rise = (await vmHwmBytes(s.child.pid!)) - before;
    t.diagnostic(`VmHWM ${(before / MIB).toFixed(1)} -> ${((before + rise) / MIB).toFixed(1)} MiB`);
    assert.ok(rise < 64 * MIB, `VmHWM rose by ${(rise / MIB).toFixed(1)} MiB`);
    const { id } = JSON.parse(up.text) as { id: string };
    assert.equal((await stat(join(s.dataDir, 'entries', `${id}.data`))).size, 256 * MIB);
  });

  test('request log lines on stdout: method, path, status, duration', () => {
    assert.match(s.output.stdout, /POST \/api\/entry\?expiration=\S+ 200 \d+(\.\d+)?ms/);
    assert.match(s.output.stdout, /DELETE \/api\/entry\/\w{10} 200 \d+(\.\d+)?ms/);
    assert.match(s.output.stderr, /invalid expiration URL parameter/);
  });

  test('SIGTERM: exits 0 promptly', async () => {
    const t0 = performance.now();
    const exit = await s.stop();
    assert.deepEqual(exit, { code: 0, signal: null });
    // Idle, it must not wait out the 5 s grace that requests in flight get (0.1 s here idle, under 1 s with both cores busy).
    assert.ok(performance.now() - t0 < 4000, `exited ${(performance.now() - t0).toFixed(0)} ms after SIGTERM`);
  });
});

describe('stand-in: shutdown, as PicoShare\'s', () => {
  test('SIGTERM mid-upload: the upload finishes (200), then exit 0; one still running 5 s later: exit 1', async () => {
    // 3 MiB at 2 MiB/s: 1.5 s, well inside the 5 s grace.
    const s = await startStandin({ env: { STANDIN_THROTTLE_MIBS: '2' } });
    const cookie = await auth(s.base);
    const pending = upload(s.base, { cookie, size: 3 * MIB });
    await new Promise((r) => setTimeout(r, 500));
    s.child.kill('SIGTERM');
    const up = await pending;
    assert.equal(up.status, 200, up.text);
    assert.deepEqual(await s.exited, { code: 0, signal: null });

    // 30 MiB at 2 MiB/s: 15 s, beyond the grace.
    const slow = await startStandin({ env: { STANDIN_THROTTLE_MIBS: '2' } });
    const cut = upload(slow.base, { cookie: await auth(slow.base), size: 30 * MIB }).then((u) => u.status, (e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 500));
    const t0 = performance.now();
    slow.child.kill('SIGTERM');
    assert.deepEqual(await slow.exited, { code: 1, signal: null });
    const seconds = (performance.now() - t0) / 1000;
    // At the 5 s grace (a timer never fires early), well before the upload's own end 14.5 s after the signal.
    assert.ok(seconds >= 4.5 && seconds < 12, `exited ${seconds.toFixed(1)} s after SIGTERM`);
    assert.equal(typeof (await cut), 'string', 'the upload cut off is an error, not an answer');
    assert.match(slow.output.stderr, /requests still running after 5 s/);
  });
});

describe('stand-in: a store that fails', () => {
  test('a full data folder: 500 "failed to insert file into database", nothing of that upload kept, the next one fits', async (t) => {
    const mnt = mountTmpfs(join(await tempDir(), 'small-data'), 4);
    if (!mnt) return t.skip(needs('root', 'mounting a 4 MiB tmpfs for the data folder needs root'));
    const s = await startStandin({ args: ['-db', join(mnt.dir, 'store.db')] }); // the last -db wins, as in Go
    try {
      const cookie = await auth(s.base);
      const big = await upload(s.base, { cookie, size: 6 * MIB });
      assert.equal(big.status, 500, big.text);
      assert.equal(big.text, 'failed to insert file into database\n');
      assert.deepEqual(await readdir(join(mnt.dir, 'entries')), [], 'the failed upload left a partial file');
      const small = await upload(s.base, { cookie, size: 3 * MIB });
      assert.equal(small.status, 200, small.text);
    } finally {
      await s.stop();
      mnt.unmount();
    }
  });
});

describe('stand-in: start-up errors', () => {
  test('missing PS_SHARED_SECRET exits 1 with a message; a bad knob value exits 2', async () => {
    const dir = await tempDir();
    const noSecret = spawnStandin(TSX_COMMAND, { PORT: '1' }, [], dir);
    const badKnob = spawnStandin(TSX_COMMAND, { PS_SHARED_SECRET: 'x', STANDIN_THROTTLE_MIBS: 'fast' }, [], dir);
    const [noSecretExit, badKnobExit] = await Promise.all([noSecret.exited, badKnob.exited]);
    assert.equal(noSecretExit.code, 1);
    assert.match(noSecret.output.stderr, /PS_SHARED_SECRET/);
    assert.equal(badKnobExit.code, 2);
    assert.match(badKnob.output.stderr, /throttle-mibs.*"fast"/);
  });
});

describe('stand-in: fault knobs', () => {
  test('STANDIN_THROTTLE_MIBS=10 holds a 20 MiB upload to about 10 MiB/s, spooling while it arrives', async (t) => {
    const s = await startStandin({ env: { STANDIN_THROTTLE_MIBS: '10' } });
    try {
      const cookie = await auth(s.base);
      // 40 MiB at 10 MiB/s: about 4 s, so a late timer on a busy machine still looks mid-upload.
      const started = performance.now();
      const pending = upload(s.base, { cookie, size: 40 * MIB });
      await new Promise((r) => setTimeout(r, 1000));
      // Mid-upload: the spool file in TMPDIR is growing and nothing is stored yet.
      const spools = await spoolFiles(s);
      assert.equal(spools.length, 1);
      const spooled = (await stat(join(s.spoolDir, spools[0]))).size;
      const elapsed = (performance.now() - started) / 1000;
      // Never more than the throttle allows in the time that passed (plus the 1 MiB kept in memory and a read's chunk).
      assert.ok(spooled > MIB && spooled < (10.5 * elapsed + 2) * MIB, `spooled ${spooled} bytes after ${elapsed.toFixed(2)} s`);
      assert.deepEqual(await readdir(join(s.dataDir, 'entries')), []);
      const up = await pending;
      assert.equal(up.status, 200, up.text);
      const mibs = up.bodyBytes / MIB / (up.responseMs / 1000);
      t.diagnostic(`${mibs.toFixed(2)} MiB/s; ${(spooled / MIB).toFixed(1)} MiB spooled after ${elapsed.toFixed(2)} s`);
      // Never faster than the throttle; and not far slower (measured 9.6-9.9 idle, with both cores busy as well).
      assert.ok(mibs > 6 && mibs < 10.5, `measured ${mibs.toFixed(2)} MiB/s`);
    } finally {
      await s.stop();
    }
  });

  test('-processing-delay-ms=1500 shows as time between the last byte and the response', async (t) => {
    const s = await startStandin({ args: ['-processing-delay-ms=1500'] }); // Go-style spelling works too
    try {
      const up = await upload(s.base, { cookie: await auth(s.base), size: MIB });
      assert.equal(up.status, 200, up.text);
      const processingMs = up.responseMs - up.lastByteMs;
      t.diagnostic(`last byte at ${up.lastByteMs.toFixed(0)} ms, response at ${up.responseMs.toFixed(0)} ms`);
      assert.ok(processingMs >= 1450 && processingMs < 3000, `processing took ${processingMs.toFixed(0)} ms`);
    } finally {
      await s.stop();
    }
  });

  test('STANDIN_SLOWDOWN_PCT=100 makes each upload take twice its work; an unslowed stand-in beside it adds nothing', { timeout: 120_000 }, async (t) => {
    const plain = await startStandin();
    const slowed = await startStandin({ env: { STANDIN_SLOWDOWN_PCT: '100' } });
    try {
      assert.match(slowed.output.stdout, /knobs: slowdown 100%/);
      const cookies = [await auth(plain.base), await auth(slowed.base)];
      const ms: [number[], number[]] = [[], []];
      const rounds = 7;
      for (let round = 0; round < rounds; round++) {
        for (const side of round % 2 === 0 ? [0, 1] : [1, 0]) {
          const up = await upload([plain, slowed][side].base, { cookie: cookies[side], size: 64 * MIB });
          assert.equal(up.status, 200, up.text);
          ms[side].push(up.responseMs);
        }
      }
      // Each slowed upload says what its work took and what was added; the line is written just before the reply.
      const line = /standin: slowdown 100%: ([\d.]+) ms of work, ([\d.]+) ms added/g;
      for (let i = 0; i < 50 && [...slowed.output.stdout.matchAll(line)].length < rounds; i++) await new Promise((r) => setTimeout(r, 20));
      const logged = [...slowed.output.stdout.matchAll(line)].map((m) => ({ work: Number(m[1]), added: Number(m[2]) }));
      assert.equal(logged.length, rounds, slowed.output.stdout);
      assert.doesNotMatch(plain.output.stdout, /slowdown/);
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
      t.diagnostic(`work ${logged.map((x) => x.work.toFixed(0)).join(', ')} ms; added ${logged.map((x) => x.added.toFixed(0)).join(', ')} ms; ` +
        `median ${median(ms[0]).toFixed(0)} ms plain, ${median(ms[1]).toFixed(0)} ms slowed: x${(median(ms[1]) / median(ms[0])).toFixed(2)}`);
      for (const [i, x] of logged.entries()) {
        // A timer never fires early (1 ms of rounding aside); under load it fires late, which only adds.
        assert.ok(x.added >= x.work - 1, `upload ${i + 1}: ${x.added} ms added to ${x.work} ms of work`);
        // The client waited for both.
        assert.ok(ms[1][i] >= x.work + x.added - 1, `upload ${i + 1}: ${ms[1][i].toFixed(1)} ms at the client, ${x.work + x.added} ms in the server`);
      }
      // Late timers aside, the added time is the work again, not more (measured 1.00-1.02 over 21 uploads with both cores busy).
      const factor = median(logged.map((x) => x.added / x.work));
      assert.ok(factor < 1.5, `added / work = ${factor.toFixed(2)}`);
    } finally {
      await plain.stop();
      await slowed.stop();
    }
  });

  test('STANDIN_CRASH_AFTER_BYTES kills the process with exit code 3 mid-upload', async () => {
    const s = await startStandin({ env: { STANDIN_CRASH_AFTER_BYTES: String(5 * MIB) } });
    const cookie = await auth(s.base);
    await assert.rejects(upload(s.base, { cookie, size: 20 * MIB }));
    assert.deepEqual(await s.exited, { code: 3, signal: null });
    assert.match(s.output.stderr, /crash knob: exiting with code 3 after \d+ upload body bytes/);
    assert.deepEqual(await spoolFiles(s), [], 'the spool is cleaned up on exit');
  });

  test('--status 503 answers every upload with 503 after reading the body', async () => {
    // Throttled to 8 MiB/s, 4 MiB take 0.5 s to read: an answer before the body would come at once.
    const s = await startStandin({ args: ['--status', '503'], env: { STANDIN_THROTTLE_MIBS: '8' } });
    try {
      const cookie = await auth(s.base);
      for (let i = 0; i < 2; i++) {
        const up = await upload(s.base, { cookie, size: 4 * MIB });
        assert.equal(up.status, 503);
        assert.ok(up.responseMs >= 450 && up.lastByteMs <= up.responseMs, `last byte at ${up.lastByteMs} ms, response at ${up.responseMs} ms`);
      }
      assert.deepEqual(await readdir(join(s.dataDir, 'entries')), []);
      assert.deepEqual(await spoolFiles(s), []);
      assert.deepEqual(await s.stop('SIGINT'), { code: 0, signal: null }, 'SIGINT exits 0 as SIGTERM does');
    } finally {
      await s.stop();
    }
  });

  test('STANDIN_CORRUPT_STORED=1 stores (and serves) a copy that differs from what was sent', async () => {
    const s = await startStandin({ env: { STANDIN_CORRUPT_STORED: '1' } });
    try {
      const data = randomBytes(MIB);
      const up = await upload(s.base, { cookie: await auth(s.base), data });
      assert.equal(up.status, 200, up.text);
      const back = await request(`${s.base}/-${(JSON.parse(up.text) as { id: string }).id}`);
      const got = Buffer.from(await back.body.arrayBuffer());
      assert.equal(got.length, data.length);
      assert.notEqual(sha256(got), sha256(data));
    } finally {
      await s.stop();
    }
  });

  test('STANDIN_HOLD_IN_MEMORY=1 raises VmHWM by at least the upload size', async (t) => {
    const s = await startStandin({ env: { STANDIN_HOLD_IN_MEMORY: '1' } });
    try {
      const cookie = await auth(s.base);
      const size = 64 * MIB;
      const before = await vmHwmBytes(s.child.pid!);
      const up = await upload(s.base, { cookie, size });
      assert.equal(up.status, 200, up.text);
      const rise = (await vmHwmBytes(s.child.pid!)) - before;
      t.diagnostic(`VmHWM ${(before / MIB).toFixed(1)} -> ${((before + rise) / MIB).toFixed(1)} MiB`);
      assert.ok(rise >= size, `VmHWM rose by ${(rise / MIB).toFixed(1)} MiB for a ${size / MIB} MiB upload`);
    } finally {
      await s.stop();
    }
  });
});
