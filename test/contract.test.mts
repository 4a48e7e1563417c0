// The PicoShare contract the suite relies on, checked against the stand-in
// always and against a real PicoShare when one is given, so the two cannot
// drift apart unnoticed:
//   PICOSHARE_BIN=/path/to/picoshare  node --import tsx --test test/contract.test.mts
//   PICOSHARE_SRC=/path/to/checkout   (built from its HEAD through lib/refs.ts, cached; run in its tree)
// Without either, the real half is reported as skipped, never as passed.
// Downloads: the stand-in serves /-{id} (PicoShare 1.3.0 on) and, with
// STANDIN_DOWNLOAD_ROUTE=bang, only /!{id} (up to 1.2.2); the suite's client
// finds which (findDownloadRoute), and every download check uses that route.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { closeClient, deleteEntry, downloadSha256, findDownloadRoute, upload, type DownloadRoute } from '../lib/client.ts';
import { DEFAULT_BUILD } from '../lib/matrix.ts';
import { createServerNetns, type ServerNetns } from '../lib/providers/netns.ts';
import { buildRefs } from '../lib/refs.ts';
import {
  freePort, hostServerArgv, spawnServer, stopServerProcess, waitReady, logTail, type ServerProcess,
} from '../lib/providers/server.ts';
import { needs } from './skips.mts';

const SECRET = 'contract-secret-Ü';
const NEVER = '2999-12-31T00:00:00Z';
const ID = /^[abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789]{10}$/;

/**
 * bindsEverywhere: PicoShare listens on ":PORT"; it runs in a network namespace of its own when one can be made.
 * route: the download route it must serve (a real PicoShare's is whichever its release serves).
 */
interface Target {
  name: string; argv: () => Promise<string[]>; bindsEverywhere?: boolean;
  env?: Record<string, string>; route?: DownloadRoute; cwd?: () => Promise<string | undefined>;
}

/** The real PicoShare to check, or why there is none. */
function realTarget(): Target | string {
  const bin = process.env.PICOSHARE_BIN;
  const src = process.env.PICOSHARE_SRC;
  if (bin) return { name: `real PicoShare (${bin})`, argv: async () => [path.resolve(bin)], bindsEverywhere: true };
  if (src) {
    const built = () => buildRefs(path.resolve(src), ['HEAD'], DEFAULT_BUILD).then((b) => b[0]);
    return {
      name: `real PicoShare (HEAD of ${src})`,
      argv: async () => [(await built()).binaryPath],
      // Releases before 1.3.8 read ./templates and ./static at run time.
      cwd: async () => (await built()).treeDir,
      bindsEverywhere: true,
    };
  }
  return 'no real PicoShare given: set PICOSHARE_BIN to a binary or PICOSHARE_SRC to a checkout';
}

const standin = async () => hostServerArgv({ kind: 'standin', env: {} });
const targets: (Target | string)[] = [
  { name: 'stand-in', argv: standin, route: '-' },
  { name: 'stand-in, old download route (STANDIN_DOWNLOAD_ROUTE=bang)', argv: standin, env: { STANDIN_DOWNLOAD_ROUTE: 'bang' }, route: '!' },
  realTarget(),
];

after(() => closeClient());

for (const target of targets) {
  if (typeof target === 'string') {
    test('real PicoShare: contract', { timeout: 300_000 }, (t) => { t.skip(needs('picoshare', target)); });
    continue;
  }
  describe(`contract: ${target.name}`, () => {
    let base = '';
    let cookie = '';
    let proc: ServerProcess;
    let tmp = '';
    let logFile = '';
    let netns: ServerNetns | null = null;
    // Over PicoShare's 1 MiB in-memory limit, so the spool-to-disk path runs.
    const payload = crypto.randomBytes(2 * 1024 * 1024 + 123);

    before(async () => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'contract-'));
      fs.mkdirSync(path.join(tmp, 'data'));
      fs.mkdirSync(path.join(tmp, 'spool'));
      logFile = path.join(tmp, 'server.log');
      const ns = target.bindsEverywhere ? await createServerNetns() : null;
      if (ns && 'error' in ns) console.log(`# ${target.name} listens on every interface of this host during the test: ${ns.error}`);
      else netns = ns;
      const port = netns ? netns.serverPort : await freePort();
      const argv = [...(await target.argv()), '-db', path.join(tmp, 'data', 'store.db')];
      proc = spawnServer(netns ? netns.wrap(argv) : argv, {
        PATH: process.env.PATH ?? '', HOME: os.homedir(), ...target.env,
        PS_SHARED_SECRET: SECRET, PORT: String(port), TMPDIR: path.join(tmp, 'spool'),
      }, logFile, await target.cwd?.());
      base = `http://${netns ? netns.serverAddress : '127.0.0.1'}:${port}`;
      try {
        await waitReady(base, proc, 30_000);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${logTail(logFile, 20, SECRET)}`);
      }
    });
    after(async () => {
      if (proc) await stopServerProcess(proc);
      await netns?.remove();
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    const call = async (method: 'GET' | 'POST' | 'DELETE', url: string, opts: { body?: string | Buffer; headers?: Record<string, string>; auth?: boolean } = {}) => {
      const headers = { ...(opts.auth ? { cookie } : {}), ...opts.headers };
      const res = await request(new URL(url, base), { method, headers, body: opts.body });
      const body = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, headers: res.headers, body };
    };
    const multipart = (parts: { name: string; filename?: string; data: Buffer | string }[]) => {
      const boundary = `----contract${crypto.randomBytes(8).toString('hex')}`;
      const chunks: Buffer[] = [];
      for (const p of parts) {
        const disp = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
        chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disp}\r\n${p.filename !== undefined ? 'Content-Type: application/octet-stream\r\n' : ''}\r\n`));
        chunks.push(Buffer.from(p.data), Buffer.from('\r\n'));
      }
      chunks.push(Buffer.from(`--${boundary}--\r\n`));
      return { body: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
    };
    const uploadParts = (parts: Parameters<typeof multipart>[0], query = `?expiration=${NEVER}`, auth = true) => {
      const m = multipart(parts);
      return call('POST', `/api/entry${query}`, { ...m, auth });
    };
    const json = (o: unknown) => ({ body: JSON.stringify(o), headers: { 'content-type': 'application/json' } });

    test('GET / answers 200 (the readiness probe)', { timeout: 300_000 }, async () => {
      assert.equal((await call('GET', '/')).status, 200);
    });

    test('auth: right secret 200 with the sharedSecret cookie; wrong 401; malformed or empty 400', { timeout: 300_000 }, async () => {
      const ok = await call('POST', '/api/auth', json({ sharedSecretKey: SECRET }));
      assert.equal(ok.status, 200);
      const setCookie = [ok.headers['set-cookie'] ?? []].flat();
      const c = setCookie.find((s) => s.startsWith('sharedSecret='));
      assert.ok(c, `Set-Cookie: ${setCookie.join(' | ')}`);
      assert.match(c, /HttpOnly/i);
      assert.match(c, /SameSite=Strict/i);
      cookie = c.split(';')[0];

      assert.equal((await call('POST', '/api/auth', json({ sharedSecretKey: 'wrong' }))).status, 401);
      assert.equal((await call('POST', '/api/auth', { body: '{"sharedSecretKey":', headers: { 'content-type': 'application/json' } })).status, 400);
      assert.equal((await call('POST', '/api/auth', { body: '' })).status, 400);
      assert.equal((await call('POST', '/api/auth', json({ sharedSecretKey: '' }))).status, 400);
    });

    test('without the cookie: upload and delete are 401', { timeout: 300_000 }, async () => {
      assert.equal((await uploadParts([{ name: 'file', filename: 'a.bin', data: 'x' }], `?expiration=${NEVER}`, false)).status, 401);
      assert.equal((await call('DELETE', '/api/entry/abcdefghij')).status, 401);
      assert.equal((await call('POST', '/api/entry', { body: 'x', headers: { cookie: 'sharedSecret=forged' } })).status, 401);
    });

    let id = '';
    /** The download route, as the suite's client finds it after the first upload. */
    let route: DownloadRoute = '-';
    test('upload: 200 application/json {"id": 10 chars} and a newline; download gives the same bytes', { timeout: 300_000 }, async () => {
      assert.ok(cookie, 'needs the auth test first');
      const r = await uploadParts([{ name: 'file', filename: 'payload.bin', data: payload }, { name: 'note', data: 'a note' }]);
      assert.equal(r.status, 200, r.body.toString());
      assert.match(String(r.headers['content-type']), /^application\/json/);
      const text = r.body.toString();
      assert.match(text, /^\{"id":"[^"]+"\}\n$/);
      id = JSON.parse(text).id;
      assert.match(id, ID);

      route = await findDownloadRoute(base, id);
      if (target.route) assert.equal(route, target.route, 'the route the client finds');
      // The old route's server knows nothing of the new one: the client must not assume /-{id}.
      if (route === '!') assert.equal((await call('GET', `/-${id}`)).status, 404);
      const d = await call('GET', `/${route}${id}`);
      assert.equal(d.status, 200);
      assert.ok(d.body.equals(payload), `downloaded ${d.body.length} bytes, sent ${payload.length}`);
      const named = await call('GET', `/${route}${id}/payload.bin`);
      assert.equal(named.status, 200);
      assert.ok(named.body.equals(payload));
      assert.equal((await call('GET', `/${route}abcdefghij`)).status, 404);
    });

    test('upload: missing, malformed or too-near expiration is 400', { timeout: 300_000 }, async () => {
      const part = [{ name: 'file', filename: 'a.bin', data: 'abc' }];
      assert.equal((await uploadParts(part, '')).status, 400);
      assert.equal((await uploadParts(part, '?expiration=')).status, 400);
      assert.equal((await uploadParts(part, '?expiration=tomorrow')).status, 400);
      const soon = new Date(Date.now() + 10 * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
      assert.equal((await uploadParts(part, `?expiration=${soon}`)).status, 400);
    });

    test('upload: malformed multipart, not multipart, no file part, empty file are 400', { timeout: 300_000 }, async () => {
      const q = `/api/entry?expiration=${NEVER}`;
      assert.equal((await call('POST', q, { auth: true, body: 'garbage', headers: { 'content-type': 'multipart/form-data; boundary=xyz' } })).status, 400);
      assert.equal((await call('POST', q, { auth: true, ...json({}) })).status, 400);
      assert.equal((await uploadParts([{ name: 'other', filename: 'a.bin', data: 'abc' }])).status, 400);
      assert.equal((await uploadParts([{ name: 'file', filename: 'a.bin', data: '' }])).status, 400);
    });

    test('upload: filename rules (directories dropped as Go does; dots, separators, long names 400), note over 500 bytes 400', { timeout: 300_000 }, async () => {
      const up = (filename: string, note?: string) =>
        uploadParts([{ name: 'file', filename, data: 'abc' }, ...(note === undefined ? [] : [{ name: 'note', data: note }])]);
      const dir = await up('some/dir/a.txt');
      assert.equal(dir.status, 200, dir.body.toString());
      assert.equal((await call('GET', `/${route}${JSON.parse(dir.body.toString()).id}/a.txt`)).status, 200);
      assert.equal((await up('..hidden')).status, 400);
      assert.equal((await up('a\\b')).status, 400);
      assert.equal((await up('a\tb')).status, 400);
      assert.equal((await up('x'.repeat(256))).status, 400);
      assert.equal((await up('x'.repeat(255), 'n'.repeat(500))).status, 200, 'limits are inclusive');
      assert.equal((await up('a.txt', 'n'.repeat(501))).status, 400);
    });

    test('upload: a file of up to 1 MiB stays in memory (no TMPDIR needed); a larger one is spooled to TMPDIR (400 without it)', { timeout: 300_000 }, async () => {
      // Go's ParseMultipartForm(1 MiB): a file part over 1 MiB goes to a temp file, one of 1 MiB or less does not.
      const spool = path.join(tmp, 'spool');
      const mib = crypto.randomBytes(1024 * 1024);
      const over = Buffer.concat([mib, Buffer.from('x')]);
      fs.rmSync(spool, { recursive: true });
      try {
        const inMemory = await uploadParts([{ name: 'file', filename: 'mib.bin', data: mib }]);
        assert.equal(inMemory.status, 200, inMemory.body.toString());
        const d = await call('GET', `/${route}${JSON.parse(inMemory.body.toString()).id}`);
        assert.ok(d.body.equals(mib), `downloaded ${d.body.length} bytes of ${mib.length}`);
        const spooled = await uploadParts([{ name: 'file', filename: 'over.bin', data: over }]);
        assert.equal(spooled.status, 400, `1 MiB + 1 byte with no TMPDIR: ${spooled.status} ${spooled.body}`);
      } finally {
        fs.mkdirSync(spool);
      }
      assert.equal((await uploadParts([{ name: 'file', filename: 'over.bin', data: over }])).status, 200, 'with TMPDIR back');
      assert.deepEqual(fs.readdirSync(spool), [], 'the spool is removed');
    });

    test('download and delete: a malformed id is 400, an unknown one 404 (download) or 200 (delete)', { timeout: 300_000 }, async () => {
      assert.equal((await call('GET', `/${route}abc`)).status, 400);
      assert.equal((await call('GET', `/${route}abcdefghi0`)).status, 400, '0 is not in the id alphabet');
      assert.equal((await call('GET', `/${route}abcdefghij`)).status, 404);
      assert.equal((await call('DELETE', '/api/entry/abcdefghi0', { auth: true })).status, 400);
    });

    test('GET /api/entry is 405 (the route is POST only)', { timeout: 300_000 }, async () => {
      assert.equal((await call('GET', '/api/entry', { auth: true })).status, 405);
    });

    test('delete: 200 with an empty body, again 200, unknown id 200, malformed id 400; then the download is 404', { timeout: 300_000 }, async () => {
      assert.ok(id, 'needs the upload test first');
      const del = await call('DELETE', `/api/entry/${id}`, { auth: true });
      assert.equal(del.status, 200);
      assert.equal(del.body.length, 0);
      assert.equal((await call('DELETE', `/api/entry/${id}`, { auth: true })).status, 200);
      assert.equal((await call('DELETE', '/api/entry/abcdefghij', { auth: true })).status, 200);
      assert.equal((await call('DELETE', '/api/entry/short', { auth: true })).status, 400);
      assert.equal((await call('DELETE', '/api/entry/bad!id!bad', { auth: true })).status, 400);
      assert.equal((await call('DELETE', '/api/entry/%zz', { auth: true })).status, 400, 'a malformed %-escape');
      assert.equal((await call('GET', `/${route}${id}`)).status, 404);
    });

    test("the suite's own client: upload, download sha256, delete", { timeout: 300_000 }, async () => {
      const file = path.join(tmp, 'client.bin');
      fs.writeFileSync(file, payload);
      const r = await upload({ baseUrl: base, cookie, file, timeoutMs: 30_000 });
      assert.equal(r.status, 200, r.body);
      assert.match(r.id ?? '', ID);
      assert.ok(r.transferSeconds !== null && r.processingSeconds !== null);
      const found = await findDownloadRoute(base, r.id!);
      assert.equal(found, route);
      const d = await downloadSha256(base, r.id!, 30_000, found);
      const { ttfbSeconds, seconds, ...got } = d;
      assert.deepEqual(got, { status: 200, bytes: payload.length, sha256: crypto.createHash('sha256').update(payload).digest('hex') });
      assert.ok(ttfbSeconds > 0 && ttfbSeconds <= seconds, `first byte at ${ttfbSeconds} s, last at ${seconds} s`);
      assert.equal(await deleteEntry(base, cookie, r.id!), 200);
    });
  });
}
