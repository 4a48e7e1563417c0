// Missing host tools are named with their Debian package: requireTool on its
// own, and a real server build whose PATH has no go.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { buildRefs } from '../lib/refs.ts';
import { findTool, MissingTool, requireTool, requireTools } from '../lib/tools.ts';
import { VagrantProvider } from '../lib/providers/vagrant.ts';
import { makeFixtureRepo } from './fixture-repo.mts';

const NOWHERE = '/nonexistent-ups-path';

test('findTool finds an installed tool and answers null for a missing one', { timeout: 120_000 }, () => {
  assert.equal(findTool('sh', '/usr/bin:/bin'), fs.existsSync('/usr/bin/sh') ? '/usr/bin/sh' : '/bin/sh');
  assert.equal(findTool('no-such-tool-ups', '/usr/bin:/bin'), null);
  assert.equal(findTool('/bin/sh'), '/bin/sh', 'a path is checked as it is');
  assert.equal(findTool('/etc', '/usr/bin'), null, 'a folder is not a tool');
});

test('requireTool names the missing tool and the Debian package that brings it', { timeout: 120_000 }, () => {
  const cases: [string, RegExp][] = [
    ['qemu-system-x86_64', /^qemu-system-x86_64 not found on PATH: install the Debian package qemu-system-x86 \(apt-get install qemu-system-x86\)$/],
    ['vagrant', /install the Debian package vagrant/],
    ['go', /install the Debian package golang-go \(apt-get install golang-go\); PicoShare 1\.5 needs Go 1\.26/],
    ['no-such-tool-ups', /^no-such-tool-ups not found on PATH$/],
  ];
  for (const [tool, message] of cases) {
    assert.throws(() => requireTool(tool, NOWHERE), (e: Error) => e instanceof MissingTool && message.test(e.message));
  }
  assert.throws(() => requireTools(['vagrant', 'mkfs.ext4', 'qemu-img'], NOWHERE), (e: Error) =>
    e instanceof MissingTool && /vagrant.*; qemu-img .*qemu-utils/.test(e.message) && (e as MissingTool).tools.length === 2);
  assert.match(requireTool('mkfs.ext4', NOWHERE), /sbin\/mkfs\.ext4$/, 'sbin folders are searched even when PATH lacks them');
});

test('a server build with no go on its PATH fails at once, naming go and its package', { timeout: 120_000 }, async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-tools-'));
  const saved = process.env.UPS_CACHE_DIR;
  process.env.UPS_CACHE_DIR = path.join(tmp, 'cache');
  t.after(() => {
    if (saved === undefined) delete process.env.UPS_CACHE_DIR; else process.env.UPS_CACHE_DIR = saved;
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const repo = await makeFixtureRepo(path.join(tmp, 'repo'));
  await assert.rejects(buildRefs(repo.dir, ['HEAD'], [`PATH=${NOWHERE}`, 'go', 'build', '-o', '{out}', '.']), (e: Error) => {
    assert.ok(e instanceof MissingTool, e.message);
    assert.match(e.message, /^go not found on PATH: install the Debian package golang-go/);
    return true;
  });
});

test('the vagrant provider names what is missing before it tries anything', { timeout: 120_000 }, async () => {
  const saved = process.env.PATH;
  process.env.PATH = NOWHERE;
  try {
    const provider = new VagrantProvider({ server: { kind: 'standin', env: {} }, secret: 's', readinessTimeoutSeconds: 5 }, { say: () => {} });
    await assert.rejects(provider.up(256), (e: Error) => {
      assert.ok(e instanceof MissingTool, e.message);
      assert.match(e.message, /vagrant not found on PATH: install the Debian package vagrant/);
      assert.match(e.message, /virsh not found on PATH: install the Debian package libvirt-clients/);
      return true;
    });
  } finally {
    process.env.PATH = saved;
  }
});
