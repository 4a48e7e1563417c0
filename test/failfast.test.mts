// Fail fast, readiness answers and build causes, on literal data; the readiness
// probe against real HTTP servers (a 500 with a body, a refused port).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, test } from 'node:test';
import { closeClient, probeRoot } from '../lib/client.ts';
import { FailFast, failFastMessage, whatToCheck } from '../lib/failfast.ts';
import { buildFailureCause } from '../lib/refs.ts';
import { freePort, serverOutput } from '../lib/providers/server.ts';

const T500 = 'GET / answered 500: open templates/custom-elements: no such file or directory';

describe('fail fast and readiness answers', { timeout: 60_000 }, () => {
  after(() => closeClient());

  test('FailFast: the first two starts of a server, not ready with the same answer, stop the run', () => {
    const ff = new FailFast();
    assert.equal(ff.observe('a', T500), null);
    assert.equal(ff.observe('a', T500), T500);
  });

  test('FailFast: a server that got ready, or failed differently, or failed only later, goes on', () => {
    const ff = new FailFast();
    assert.equal(ff.observe('ready-first', null), null);
    assert.equal(ff.observe('ready-first', T500), null);
    assert.equal(ff.observe('ready-first', T500), null, 'only the first two starts are weighed');
    assert.equal(ff.observe('ready-second', T500), null);
    assert.equal(ff.observe('ready-second', null), null);
    assert.equal(ff.observe('ready-second', T500), null);
    assert.equal(ff.observe('different', 'GET / connection refused'), null);
    assert.equal(ff.observe('different', 'the process exited with code 1'), null);
    assert.equal(ff.observe('different', 'the process exited with code 1'), null);
    // Sides are told apart: one ref's failures do not count against another's.
    assert.equal(ff.observe('x', T500), null);
    assert.equal(ff.observe('y', T500), null);
    assert.equal(ff.observe('x', T500), T500);
  });

  test('whatToCheck names the likely cause per answer; the message carries answer, evidence and advice', () => {
    assert.match(whatToCheck(T500), /working directory.*server\.workdir/);
    assert.match(whatToCheck('GET / connection refused'), /PORT/);
    assert.match(whatToCheck('the process exited with code 2'), /exits at start/);
    assert.match(whatToCheck('GET / no answer within 2 s'), /readiness_seconds/);
    const m = failFastMessage('1.1.8', T500, '=== entry\nerror: x\n');
    assert.deepEqual(m.split('\n').slice(0, 4), [
      `fail fast: the server (1.1.8) never got ready on its first 2 starts, each time: ${T500}`,
      "the run stops here; the results so far are kept. The last start's entry in failures.log:",
      '=== entry', 'error: x',
    ]);
    assert.match(m.split('\n').at(-1)!, /^what to check: /);
  });

  test('serverOutput leaves out the readiness polls (PicoShare\'s and the stand-in\'s access lines), counts them, masks the secret', () => {
    const log = [
      'old server line',
      '--- server start 2026-01-01T00:00:00Z port 4001',
      '2026/01/01 00:00:00 main.go:42: listening on :4001 with secret s3cret',
      ...Array.from({ length: 100 }, () => '127.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 500 58'),
      '2026-01-01T00:00:01.000Z GET / 200 1.2ms',
      '127.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "GET /-abcdefghij HTTP/1.1" 200 5',
      'panic: template missing',
    ].join('\n');
    assert.equal(serverOutput(log, 40, 's3cret', { withoutReadinessPolls: true }), [
      '--- server start 2026-01-01T00:00:00Z port 4001',
      '2026/01/01 00:00:00 main.go:42: listening on :4001 with secret ***',
      '127.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "GET /-abcdefghij HTTP/1.1" 200 5',
      'panic: template missing',
      "(101 access-log lines of the suite's GET / readiness polls left out)",
    ].join('\n'));
    // Without the option, the tail as it is: here only polls and the last lines.
    assert.equal(serverOutput(log, 2, '').split('\n').length, 2);
  });

  test('probeRoot: the status and the body\'s first line; connection refused; 200 is ready', async () => {
    let status = 500;
    const srv = http.createServer((_req, res) => { res.writeHead(status); res.end(status === 200 ? 'ok' : 'open templates/x: no such file or directory\nsecond line\n'); });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
    try {
      assert.deepEqual(await probeRoot(url), { ready: false, answer: 'GET / answered 500: open templates/x: no such file or directory' });
      status = 200;
      assert.deepEqual(await probeRoot(url), { ready: true });
    } finally {
      srv.close();
    }
    assert.deepEqual(await probeRoot(`http://127.0.0.1:${await freePort()}`), { ready: false, answer: 'GET / connection refused' });
  });

  test('buildFailureCause: a newer Go, a toolchain go cannot download, a module the proxy no longer serves', () => {
    assert.equal(buildFailureCause('go: go.mod requires go >= 1.27.1 (running go 1.26.8; GOTOOLCHAIN=local)\n'),
      "needs Go 1.27.1 or newer (its go.mod's go line); the installed Go is 1.26.8");
    assert.equal(buildFailureCause('go: downloading go1.27.0 (linux/amd64)\ngo: download go1.27.0 for linux/amd64: toolchain not available\n'),
      "needs Go 1.27.0 or newer (its go.mod's go line), which go could not download: toolchain not available");
    assert.equal(buildFailureCause('go: github.com/old/gone@v0.1.0: reading https://proxy.golang.org/github.com/old/gone/@v/v0.1.0.mod: 410 Gone\n\tserver response: not found\n'),
      'module github.com/old/gone@v0.1.0 is not served by the module proxy (410 Gone)');
    assert.equal(buildFailureCause('main.go:4:2: github.com/x/y@v1.2.3: Get "https://proxy.golang.org/github.com/x/y/@v/v1.2.3.zip": dial tcp: lookup proxy.golang.org: no such host\n'),
      'module github.com/x/y@v1.2.3 could not be fetched: Get "https://proxy.golang.org/github.com/x/y/@v/v1.2.3.zip": dial tcp: lookup proxy.golang.org: no such host');
    assert.equal(buildFailureCause('./main.go:3:1: syntax error: non-declaration statement outside function body\n'), null);
  });
});
