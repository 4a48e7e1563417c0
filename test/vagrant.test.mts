// The vagrant provider: its parsers and box files on literal data, then a real
// `vagrant up` at 256 MB running the stand-in, a small upload checked by
// sha256, the in-guest peak memory read back, and a destroy that leaves no
// qemu process behind. Skips, saying why, where vagrant or libvirt is missing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { $ } from 'zx';
import { closeClient } from '../lib/client.ts';
import type { GuestEnvironment } from '../lib/providers/guest.ts';
import { readGuestImage } from '../lib/providers/image.ts';
import { runIteration } from '../lib/iteration.ts';
import { ensureTestFile } from '../lib/testfiles.ts';
import { MiB } from '../lib/units.ts';
import { BOX_NAME, boxCatalog, boxMetadata, boxVagrantfile, boxVersion } from '../lib/providers/vagrant-box.ts';
import { parseBoxList, parseSshConfig, qemuPidsOf, VagrantProvider, vagrantRunner } from '../lib/providers/vagrant.ts';
import { interruptWait, processesWith, startRun, waitFor } from './run-helpers.mts';
import { needs } from './skips.mts';

const SECRET = 'vagrant-test-secret-Qp7z';

test('parseSshConfig reads the first host block of vagrant ssh-config', { timeout: 60_000 }, () => {
  const text = `Host default
  HostName 127.0.0.1
  User root
  Port 40123
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile "/var/tmp/with space/id_ed25519"
  IdentitiesOnly yes
  LogLevel FATAL

Host other
  HostName 10.0.0.9
  Port 22
`;
  assert.deepEqual(parseSshConfig(text), {
    host: '127.0.0.1', port: 40123, user: 'root', keyFile: '/var/tmp/with space/id_ed25519',
  });
  assert.throws(() => parseSshConfig('Host default\n  HostName 127.0.0.1\n'), /lacks HostName, Port/);
});

test('parseBoxList reads box names and versions of vagrant box list --machine-readable', { timeout: 60_000 }, () => {
  const text = [
    '1764072000,,ui,info,ups/bookworm (libvirt%!(VAGRANT_COMMA) 1.20261125120612)',
    '1764072000,,box-name,ups/bookworm',
    '1764072000,,box-provider,libvirt',
    '1764072000,,box-version,1.20261125120612',
    '1764072000,,box-name,debian/bookworm64',
    '1764072000,,box-provider,libvirt',
    '1764072000,,box-version,12.20250126.1',
  ].join('\n');
  assert.deepEqual(parseBoxList(text), [
    { name: 'ups/bookworm', version: '1.20261125120612' },
    { name: 'debian/bookworm64', version: '12.20250126.1' },
  ]);
  assert.deepEqual(parseBoxList('1764072000,,ui,info,There are no installed boxes!'), []);
});

test('each image build is a box version, added through a catalog pointing at the local box file', { timeout: 60_000 }, () => {
  assert.equal(boxVersion({ image_version: 1, built_at: '2026-11-25T12:06:12.345Z' }), '1.20261125120612');
  const catalog = JSON.parse(boxCatalog('1.20261125120612', '/var/tmp/x y/bookworm.box'));
  assert.equal(catalog.name, BOX_NAME);
  assert.deepEqual(catalog.versions, [{
    version: '1.20261125120612',
    providers: [{ name: 'libvirt', url: 'file:///var/tmp/x%20y/bookworm.box' }],
  }]);
});

test('box metadata gives the virtual size in whole GiB, rounded up', { timeout: 60_000 }, () => {
  assert.deepEqual(boxMetadata(12 * 1024 ** 3), { provider: 'libvirt', format: 'qcow2', virtual_size: 12 });
  assert.deepEqual(boxMetadata(12 * 1024 ** 3 + 1).virtual_size, 13);
});

test('the box Vagrantfile boots the kernel directly and logs in as root without sudo', { timeout: 60_000 }, () => {
  const vf = boxVagrantfile('root=/dev/vda rw console=ttyS0');
  assert.match(vf, /lv\.kernel = File\.join\(box, "vmlinux"\)/);
  assert.match(vf, /lv\.initrd = File\.join\(box, "initrd\.img"\)/);
  assert.match(vf, /lv\.cmd_line = "root=\/dev\/vda rw console=ttyS0"/);
  assert.match(vf, /config\.ssh\.username = "root"/);
  assert.match(vf, /config\.ssh\.sudo_command = "%c"/);
});

/** Why a real vagrant VM cannot run here, or null when it can. */
async function vagrantMissing(): Promise<string | null> {
  for (const cmd of ['vagrant', 'virsh', 'qemu-system-x86_64', 'libvirtd']) {
    const found = await $({ nothrow: true, quiet: true })`command -v ${cmd} || test -x /usr/sbin/${cmd}`;
    if (found.exitCode !== 0) return `${cmd} is not installed (.ci/install-vm-deps installs it)`;
  }
  const plugins = await $({ nothrow: true, quiet: true })`vagrant plugin list`;
  if (!plugins.stdout.includes('vagrant-libvirt')) return 'the vagrant-libvirt plugin is not installed';
  if (!(await readGuestImage()) && process.getuid?.() !== 0) return 'no guest image for the box, and building one needs root';
  return null;
}

test('vagrant: a 256 MB VM boots, runs the stand-in, uploads with sha256 check, samples, and is destroyed', { timeout: 1_200_000 }, async (t) => {
  const reason = await vagrantMissing();
  if (reason) return t.skip(needs('vm', reason));
  const provider = new VagrantProvider(
    { server: { kind: 'standin', env: {} }, secret: SECRET, readinessTimeoutSeconds: 30 },
    { say: (l) => t.diagnostic(l) },
  );
  const t0 = Date.now();
  const env = await provider.up(256) as GuestEnvironment;
  const domain = env.facts.vm_name as string;
  try {
    t.diagnostic(`facts ${JSON.stringify(env.facts)}`);
    assert.equal(env.facts.libvirt_uri, 'qemu:///session');
    assert.ok((env.facts.boot_seconds as number) > 0);
    assert.match(String(env.facts.box), process.env.UPS_VM_BOX ? /./ : /^ups\/bookworm \d+\.\d{14}$/);
    assert.ok((await qemuPidsOf(domain)).length > 0, 'no qemu process for the domain');
    // VM RAM is the memory limit: the guest kernel sees a little less than 256 MB.
    const mem = await env.ssh.run(['grep', 'MemTotal', '/proc/meminfo'], { timeoutMs: 60_000 });
    const memTotalKb = Number(/(\d+)/.exec(mem.stdout)![1]);
    assert.ok(memTotalKb > 150 * 1024 && memTotalKb <= 256 * 1024, `MemTotal ${memTotalKb} kB`);

    const url = await env.startServer();
    t.diagnostic(`ssh-ready ${env.facts.boot_seconds} s (vagrant up), server-ready ${((Date.now() - t0) / 1000).toFixed(1)} s after up() began`);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);

    const file = await ensureTestFile(10 * MiB);
    const ok = await runIteration({
      env, file, secret: SECRET, uploadTimeoutSeconds: 600, authTimeoutSeconds: 60,
      testCase: { memoryMb: 256, size: { label: '10MiB', bytes: file.bytes }, iteration: 1 },
    });
    t.diagnostic(`10 MiB: ${JSON.stringify(ok.row)}; samples ${JSON.stringify(env.summaries)}`);
    assert.equal(ok.row.exit_reason, 'success', ok.failure ?? '');
    assert.equal(ok.row.sha256_ok, true);
    assert.ok(ok.row.peak_memory_bytes! > 20 * MiB && ok.row.peak_memory_bytes! < 256 * MiB, `guest used ${ok.row.peak_memory_bytes}`);
    assert.ok(ok.row.server_peak_rss_bytes! > 10 * MiB, `server RSS ${ok.row.server_peak_rss_bytes}`);
  } finally {
    const d0 = Date.now();
    await env.down();
    await closeClient();
    t.diagnostic(`destroy ${((Date.now() - d0) / 1000).toFixed(1)} s`);
  }
  assert.deepEqual(await qemuPidsOf(domain), [], 'qemu still running after down()');
  const vms = await $({ nothrow: true, quiet: true })`pgrep -f ${domain}`;
  assert.equal(vms.stdout.trim(), '', `a process of ${domain} is still running`);
});

// Through ./run-tests, whose own handler tears down in order: Ctrl-C while
// `vagrant up` runs stops it, destroys the half-booted VM, does not retry,
// and leaves no row, qemu process, libvirt domain or project folder.
test('vagrant: SIGINT to ./run-tests during vagrant up: exit 130, no retry, no row, nothing of the VM left', { timeout: 1_200_000 }, async (t) => {
  const reason = await vagrantMissing();
  if (reason) return t.skip(needs('vm', reason));
  if (!(await readGuestImage())) return t.skip(needs('vm', 'no guest image (the test above builds it)'));
  const secret = `vagrant-intr-${Date.now()}`;
  const run = startRun(['--provider', 'vagrant', '--sizes', '1MiB', '--memory', '256', '--iterations', '1'], { PS_SHARED_SECRET: secret });
  // libvirt names the domain PROJECT_default and QEMU gets -name guest=DOMAIN; the project carries the run's pid.
  const domainOf = () => /guest=(ups-256-\d+-[0-9a-f]+)_default/.exec(processesWith(`guest=ups-256-${run.pid}-`).join('\n'))?.[1];
  await waitFor('the VM to be started', () => domainOf() !== undefined, 300_000);
  const project = domainOf()!;
  // 2 s into the boot, which takes 10 s or more under TCG.
  await interruptWait(run, { afterMs: 2000, maxSeconds: 120, what: 'the VM boot', diagnostic: (l) => t.diagnostic(l) });
  assert.doesNotMatch(run.stderr(), /retrying/, 'an interrupted boot is not retried');
  assert.deepEqual(await qemuPidsOf(`${project}_default`), [], 'qemu still running');
  const r = vagrantRunner();
  const domains = await $({ nothrow: true, quiet: true, env: r.env })`${[...r.prefix, 'virsh', '-c', 'qemu:///session', 'list', '--all', '--name']}`;
  assert.ok(!domains.stdout.includes(project), `libvirt domain ${project}_default still defined`);
  assert.equal(fs.existsSync(path.join(r.scratch, 'projects', project)), false, 'project folder left behind');
  fs.rmSync(run.out, { recursive: true, force: true });
});
