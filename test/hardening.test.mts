// Issue 19's attacks, each as a test: what a hostile new user did to the
// suite (huge counts, folders it cannot make, cut or shared result folders,
// bad knobs and files) and the one clear refusal or right result expected.
// The real executables run under a time limit where a hang was the defect.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { SUITE_DIR } from '../lib/paths.ts';

const RUN_TESTS = path.join(SUITE_DIR, 'run-tests');

function tmp(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ups-harden-${prefix}-`));
}

/** Runs an executable to its end, or kills it at `seconds` (then status is null and the test fails on it). */
function exec(file: string, args: string[], opts: { env?: Record<string, string>; seconds?: number; cwd?: string } = {}) {
  const r = spawnSync(file, args, {
    cwd: opts.cwd ?? os.tmpdir(), env: { ...process.env, ...opts.env }, encoding: 'utf8', timeout: (opts.seconds ?? 60) * 1000, killSignal: 'SIGKILL',
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe('hardening', { timeout: 600_000 }, () => {
  test('3: --iterations 999999999 is refused at once with the bound (exit 2), nothing made; a matrix file too', () => {
    const out = tmp('iter');
    const r = exec(RUN_TESTS, ['--iterations', '999999999', '--sizes', '1MiB', '--memory', '256', '--out', out], { seconds: 20 });
    assert.equal(r.status, 2, `${r.signal ?? ''} ${r.stderr}`);
    assert.equal(r.stderr.trim(), 'Error: --iterations: at most 1000 iterations per case (got "999999999")');
    assert.deepEqual(fs.readdirSync(out), []);
    const m = path.join(out, 'm.yaml');
    fs.writeFileSync(m, 'sizes: [1MiB]\nmemory_limits: [256]\niterations: 1001\n');
    const f = exec(RUN_TESTS, ['--matrix', m, '--out', out], { seconds: 20 });
    assert.equal(f.status, 2, f.stderr);
    assert.match(f.stderr, /m\.yaml:3: iterations: at most 1000 iterations per case \(got 1001\)/);
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('4: a cache folder under /proc is refused at once (exit 2) for the stand-in bundle and the test files', () => {
    const out = tmp('proc');
    const r = exec(RUN_TESTS, ['--sizes', '4MiB', '--memory', '256', '--iterations', '1', '--out', out], { env: { UPS_CACHE_DIR: '/proc/nope' }, seconds: 30 });
    assert.equal(r.status, 2, `${r.signal ?? ''} ${r.stderr}`);
    assert.match(r.stderr, /^Error: cannot create the stand-in's cache folder \/proc\/nope\/standin: ENOENT at \/proc\/nope$/m);
    // The test files' cache, reached with a server binary (no stand-in bundle): the same refusal, not a spin.
    const bin = path.join(out, 'server');
    fs.writeFileSync(bin, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    const m = path.join(out, 'm.yaml');
    fs.writeFileSync(m, `sizes: [4MiB]\nmemory_limits: [256]\niterations: 1\nserver: {binary: ${bin}}\n`);
    const b = exec(RUN_TESTS, ['--matrix', m, '--out', path.join(out, 'results')], { env: { UPS_CACHE_DIR: '/proc/nope' }, seconds: 30 });
    assert.equal(b.status, 2, `${b.signal ?? ''} ${b.stderr}`);
    assert.match(b.stderr, /^Error: cannot create the test files' cache folder \/proc\/nope\/testfiles\/splitmix64: ENOENT at \/proc\/nope$/m);
    assert.ok(!fs.existsSync(path.join(out, 'results')), 'no results folder');
    fs.rmSync(out, { recursive: true, force: true });
  });
});
