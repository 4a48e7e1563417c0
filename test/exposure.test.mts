// Secrets and exposure, checked on a real run: the shared secret in no process's
// arguments (what other users can read in /proc/*/cmdline) and in no file or
// output; every socket our servers listen on bound to 127.0.0.1 (read from
// /proc/net/tcp{,6}); shell metacharacters in flags and matrix.yaml values run
// nothing; the guest's ssh key private to its owner.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readGuestImage } from '../lib/providers/image.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { matrixFile, rowCount, serverWrapper, startRun } from './run-helpers.mts';
import { needs } from './skips.mts';

/** Processes whose command line shows `text`. */
function cmdlinesWith(text: string): string[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).flatMap((p) => {
    try {
      const c = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ');
      return c.includes(text) ? [`${p}: ${c}`] : [];
    } catch { return []; }
  });
}

/** Listening TCP sockets of a process: "address:port" as the kernel shows them (hex), decoded. */
function listeningSockets(pid: number): string[] {
  let inodes: Set<string>;
  try {
    inodes = new Set(fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try { return /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? ''; } catch { return ''; }
    }).filter(Boolean));
  } catch { return []; }
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9])) continue; // 0A = LISTEN
      const [addr, port] = f[1].split(':');
      const ip = addr === '0100007F' ? '127.0.0.1' : addr === '00000000' ? '0.0.0.0' : /^0+$/.test(addr) ? '[::]' : addr;
      out.push(`${ip}:${parseInt(port, 16)}`);
    }
  }
  return out;
}

test('during a run: the secret is in no command line, every listening socket of its servers is on 127.0.0.1', { timeout: 1_200_000 }, async () => {
  const secret = `exposure-${Date.now()}-Xq`;
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-expose-data-'));
  const run = startRun(['--sizes', '8MiB', '--memory', '512', '--iterations', '4'],
    { PS_SHARED_SECRET: secret, STANDIN_THROTTLE_MIBS: '8', UPS_LOCAL_DATA_DIR: data });
  const seen: string[] = [];
  const leaks: string[] = [];
  let scans = 0;
  while (run.child.exitCode === null && rowCount(run.runDir()) < 3) {
    leaks.push(...cmdlinesWith(secret));
    for (const line of cmdlinesWith(`-db ${data}/`)) {
      const sockets = listeningSockets(Number(line.split(':')[0]));
      seen.push(...sockets);
    }
    scans++;
    await new Promise((r) => setTimeout(r, 100));
  }
  const exit = await run.exited;
  assert.equal(exit.code, 0, run.stderr());
  assert.deepEqual(leaks, [], 'the secret showed in a command line');
  assert.ok(seen.length > 0, `the server's listening socket was seen (${scans} scans)`);
  assert.deepEqual(seen.filter((s) => !s.startsWith('127.0.0.1:')), [], 'a server listened beyond 127.0.0.1');
  assert.ok(!run.stdout().includes(secret) && !run.stderr().includes(secret), 'the secret is in the output');
  const dir = run.runDir()!;
  for (const f of fs.readdirSync(dir)) assert.ok(!fs.readFileSync(path.join(dir, f), 'utf8').includes(secret), `the secret is in ${f}`);
  fs.rmSync(data, { recursive: true, force: true });
  fs.rmSync(run.out, { recursive: true, force: true });
});

test('a failure\'s server log tail in failures.log masks the secret even when the server prints it', { timeout: 1_200_000 }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-expose-log-'));
  const secret = `logged-${Date.now()}-Zz`;
  const chatty = await serverWrapper(tmp, 'chatty-server', 'echo "chatty-server: my secret is $PS_SHARED_SECRET" >&2; exit 1');
  const run = startRun(['--matrix', matrixFile(tmp, { binary: chatty, sizes: ['4MiB'], iterations: 1 })], { PS_SHARED_SECRET: secret }, path.join(tmp, 'results'));
  assert.equal((await run.exited).code, 0, run.stderr());
  const failures = fs.readFileSync(path.join(run.runDir()!, 'failures.log'), 'utf8');
  assert.match(failures, /chatty-server: my secret is \*\*\*/);
  assert.ok(!failures.includes(secret));
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('shell metacharacters in --out, a size label, a server path and a ref run nothing', { timeout: 1_200_000 }, async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-inject-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const cwd = path.join(tmp, 'cwd');
  fs.mkdirSync(cwd);
  const run = (args: string[], env: Record<string, string> = {}) => spawnSync(path.join(SUITE_DIR, 'run-tests'), args, {
    cwd, encoding: 'utf8', env: { ...process.env, ...env },
  });
  const pwned = () => fs.readdirSync(cwd).concat(fs.readdirSync(tmp)).filter((f) => f.startsWith('pwned'));

  // --out: the folder is made with that very name.
  const out = path.join(tmp, 'x; touch pwned-out; $(touch pwned-out2) `touch pwned-out3`');
  const r1 = run(['--sizes', '1MiB', '--memory', '512', '--iterations', '1', '--out', out]);
  assert.equal(r1.status, 0, r1.stderr);
  assert.equal(path.dirname(r1.stdout.trim().split('\n').at(-1)!), out);

  // A size label is parsed, never passed on: a bad one is an input error naming it.
  const r2 = run(['--sizes', '1MiB;touch pwned-size', '--out', out]);
  assert.equal(r2.status, 2);
  assert.match(r2.stderr, /--sizes: .*1MiB;touch pwned-size/);

  // A server binary whose path holds shell syntax is started as that file.
  const binDir = path.join(tmp, 'bin $(touch pwned-bin); touch pwned-bin2');
  fs.mkdirSync(binDir);
  const server = await serverWrapper(binDir, 'server', '');
  const r3 = run(['--matrix', matrixFile(tmp, { binary: server, sizes: ['1MiB'], iterations: 1 }), '--out', out]);
  assert.equal(r3.status, 0, r3.stderr);
  assert.match(fs.readFileSync(path.join(r3.stdout.trim().split('\n').at(-1)!, 'raw.csv'), 'utf8'), /,success,/);

  // A ref reaches git through zx's escaping: no such commit, nothing run.
  const repo = path.join(tmp, 'repo');
  fs.mkdirSync(repo);
  spawnSync('git', ['init', '-q', repo]);
  fs.writeFileSync(path.join(tmp, 'src.yaml'), `sizes: [1MiB]\nmemory_limits: [512]\niterations: 1\nserver:\n  source: ${JSON.stringify(repo)}\n`);
  const r4 = run(['--matrix', path.join(tmp, 'src.yaml'), '--ref', 'main; touch pwned-ref', '--ref', '$(touch pwned-ref2)', '--out', out]);
  assert.notEqual(r4.status, 0);
  assert.match(r4.stderr, /ref "main; touch pwned-ref" is not a commit/);

  assert.deepEqual(pwned(), [], 'a shell ran an injected command');
});

test('the guest\'s ssh key is private to its owner (mode 600)', { timeout: 1_200_000 }, async (t) => {
  const image = await readGuestImage();
  if (!image) return t.skip(needs('vm', 'no guest image built on this host (./run-tests --provider qemu builds one)'));
  assert.equal(fs.statSync(image.sshKey).mode & 0o777, 0o600, image.sshKey);
  assert.equal(fs.statSync(path.dirname(image.sshKey)).mode & 0o077, 0, 'the image folder is not open to others');
});
