// ./run-tests --doctor: the verdict logic on literal facts (which checks matter
// for each provider, what fails, what only warns, the printed lines), then the
// real executable on this machine for the local and qemu providers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  canRun, countLeases, defaultNetworkState, diagnose, probesFor, renderChecks, toolsFor, type Check, type Facts,
} from '../lib/doctor.ts';
import { defaultImageDir, readGuestImage } from '../lib/providers/image.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { findTool, PROVIDER_TOOLS } from '../lib/tools.ts';
import { needs } from './skips.mts';

const GiB = 1024 ** 3;
const allTools = (provider: Facts['provider']) => Object.fromEntries(toolsFor(provider).map((t) => [t, `/usr/bin/${t}`]));
const disk = { shortfalls: [], summary: '/: about 1 GiB needed, 50 GiB free' };
const image = { dir: '/c/image', virtualBytes: 12 * GiB, needBytes: 12 * GiB, builtAt: '2026-11-25T12:06:41Z' };
const byName = (checks: Check[], name: string) => {
  const c = checks.find((x) => x.name === name);
  assert.ok(c, `a check named ${name} in ${checks.map((x) => x.name).join(', ')}`);
  return c;
};

const qemuFacts = (over: Partial<Facts> = {}): Facts => ({
  provider: 'qemu', root: true, serverFromSource: false, tools: allTools('qemu'), disk,
  kvm: { accel: 'tcg', devKvm: 'missing' }, image, ...over,
});

const vagrantFacts = (over: Partial<Facts> = {}): Facts => ({
  provider: 'vagrant', root: true, serverFromSource: false, tools: allTools('vagrant'), disk,
  kvm: { accel: 'tcg', devKvm: 'usable' },
  plugin: { ok: true, detail: 'vagrant-libvirt (0.11.2, system)' },
  libvirt: { session: { ok: true, detail: 'qemu:///session answers' }, system: { ok: false, detail: 'no socket' } },
  network: { state: null, leases: null, detail: 'no socket' },
  libvirtGroup: null, image,
  box: { name: 'ups/bookworm', versions: ['1.2026'], wanted: '1.2026', configured: null, configuredPresent: false },
  ...over,
});

test('each provider probes only what it needs: local none of the VM machinery', { timeout: 600_000 }, () => {
  assert.deepEqual(probesFor('local'), ['cgroup']);
  assert.deepEqual(toolsFor('local'), ['go']);
  assert.deepEqual(probesFor('qemu'), ['kvm', 'image']);
  assert.ok(!toolsFor('qemu').includes('vagrant'));
  assert.deepEqual(probesFor('vagrant'), ['plugin', 'kvm', 'libvirt', 'network', 'group', 'image', 'box']);
  assert.deepEqual(toolsFor('vagrant').slice(0, 3), ['vagrant', 'virsh', 'qemu-system-x86_64']);
});

test('local: a memory cgroup and free disk are all it takes; go only matters for a server built from source', { timeout: 600_000 }, () => {
  const base: Facts = { provider: 'local', root: true, serverFromSource: false, tools: { go: null }, disk, cgroup: { ok: true, detail: 'v1' } };
  const ok = diagnose(base);
  assert.equal(canRun(ok), true);
  assert.equal(byName(ok, 'go').status, 'warn', 'no go, stand-in server: a warning');
  assert.equal(byName(ok, 'memory cgroup').status, 'ok');
  const source = diagnose({ ...base, serverFromSource: true });
  assert.equal(byName(source, 'go').status, 'FAIL');
  assert.match(byName(source, 'go').fix!, /^apt-get install golang-go/);
  assert.equal(canRun(source), false);
  const noCgroup = diagnose({ ...base, cgroup: { ok: false, detail: 'no cgroup v1 memory hierarchy' } });
  assert.equal(byName(noCgroup, 'memory cgroup').status, 'warn');
  assert.match(byName(noCgroup, 'memory cgroup').finding, /NOT enforced/);
  assert.equal(canRun(noCgroup), true, 'the local provider runs without a cgroup (unlimited, with a warning)');
  const full = diagnose({ ...base, disk: { shortfalls: ['/tmp: 1 GiB free, the run needs about 11 GiB there'], summary: '' } });
  assert.equal(byName(full, 'free disk').status, 'FAIL');
  assert.equal(canRun(full), false);
});

test('qemu: TCG only is a warning; a missing QEMU fails with its package; the image is built when it can be', { timeout: 600_000 }, () => {
  const ok = diagnose(qemuFacts());
  assert.equal(canRun(ok), true);
  assert.equal(byName(ok, 'KVM').status, 'warn');
  assert.match(byName(ok, 'KVM').finding, /^TCG only: there is no \/dev\/kvm/);
  assert.match(diagnose(qemuFacts({ kvm: { accel: 'tcg', devKvm: 'usable' } })).find((c) => c.name === 'KVM')!.finding, /paravirtual/);
  assert.equal(byName(diagnose(qemuFacts({ kvm: { accel: 'kvm', devKvm: 'usable' } })), 'KVM').status, 'ok');

  const noQemu = diagnose(qemuFacts({ tools: { ...allTools('qemu'), 'qemu-system-x86_64': null } }));
  assert.deepEqual(byName(noQemu, 'qemu-system-x86_64'), { status: 'FAIL', name: 'qemu-system-x86_64', finding: 'not found on PATH', fix: 'apt-get install qemu-system-x86' });
  assert.equal(canRun(noQemu), false);

  const missing = diagnose(qemuFacts({ image: { ...image, virtualBytes: null, builtAt: null } }));
  assert.equal(byName(missing, 'guest image').status, 'warn');
  assert.match(byName(missing, 'guest image').fix!, /--build-image/);
  assert.equal(canRun(missing), true, 'root with debootstrap: the run builds the image');

  const small = diagnose(qemuFacts({ image: { ...image, needBytes: 14 * GiB } }));
  assert.match(byName(small, 'guest image').finding, /too small .*12 GiB < 14 GiB/);

  const noDebootstrap = diagnose(qemuFacts({ image: { ...image, virtualBytes: null }, tools: { ...allTools('qemu'), debootstrap: null } }));
  assert.equal(byName(noDebootstrap, 'debootstrap').status, 'FAIL', 'needed now: there is no image');
  assert.equal(byName(noDebootstrap, 'guest image').status, 'FAIL');
  assert.match(byName(noDebootstrap, 'guest image').fix!, /apt-get install debootstrap/);
  assert.equal(canRun(noDebootstrap), false);
  assert.equal(byName(diagnose(qemuFacts({ tools: { ...allTools('qemu'), debootstrap: null } })), 'debootstrap').status, 'warn',
    'with the image there, debootstrap is only for a rebuild');

  const notRoot = diagnose(qemuFacts({ root: false, image: { ...image, virtualBytes: null } }));
  assert.match(byName(notRoot, 'guest image').finding, /cannot be built here \(needs root\)/);
  assert.equal(canRun(notRoot), false);
});

test('vagrant: session libvirtd, plugin and box are required; system libvirtd, default network and group only warn', { timeout: 600_000 }, () => {
  const ok = diagnose(vagrantFacts());
  assert.equal(canRun(ok), true, renderChecks('vagrant', ok));
  for (const name of ['libvirtd (system)', 'libvirt default network', 'KVM']) assert.equal(byName(ok, name).status, 'warn', name);
  assert.match(byName(ok, 'libvirt default network').finding, /not needed: the session mode uses QEMU user networking/);
  assert.match(byName(ok, 'libvirt group').finding, /root \(skipped/);

  const inactive = diagnose(vagrantFacts({ network: { state: 'inactive', leases: null, detail: '' } }));
  assert.equal(byName(inactive, 'libvirt default network').status, 'warn');
  assert.match(byName(inactive, 'libvirt default network').fix!, /^virsh net-start default/);
  assert.match(byName(diagnose(vagrantFacts({ network: { state: 'active', leases: 2, detail: '' } })), 'libvirt default network').finding, /^active, 2 DHCP lease\(s\)$/);

  const user = diagnose(vagrantFacts({ root: false, libvirtGroup: { user: 'ann', member: false } }));
  assert.equal(byName(user, 'libvirt group').status, 'warn');
  assert.match(byName(user, 'libvirt group').fix!, /usermod -aG libvirt ann/);

  const noSession = diagnose(vagrantFacts({ libvirt: { session: { ok: false, detail: 'connection refused' }, system: { ok: true, detail: 'up' } } }));
  assert.equal(byName(noSession, 'libvirtd (session)').status, 'FAIL');
  assert.equal(canRun(noSession), false);
  const fresh = diagnose(vagrantFacts({ libvirt: { session: 'no scratch folder yet', system: { ok: false, detail: 'no socket' } } }));
  assert.equal(byName(fresh, 'libvirtd (session)').status, 'warn', 'a machine where no run has made the scratch folder yet');
  assert.equal(canRun(fresh), true);
  const noPlugin = diagnose(vagrantFacts({ plugin: { ok: false, detail: 'not in `vagrant plugin list`' } }));
  assert.equal(byName(noPlugin, 'vagrant-libvirt plugin').fix, 'apt-get install vagrant-libvirt');
  assert.equal(canRun(noPlugin), false);

  const oldBox = diagnose(vagrantFacts({ box: { name: 'ups/bookworm', versions: ['1.2025'], wanted: '1.2026', configured: null, configuredPresent: false } }));
  assert.equal(byName(oldBox, 'vagrant box').status, 'warn');
  assert.match(byName(oldBox, 'vagrant box').finding, /has only 1\.2025: the first run makes it from the guest image \(version 1\.2026\)/);
  const noBoxNoImage = diagnose(vagrantFacts({
    root: false, image: { ...image, virtualBytes: null }, box: { name: 'ups/bookworm', versions: [], wanted: null, configured: null, configuredPresent: false },
  }));
  assert.equal(byName(noBoxNoImage, 'vagrant box').status, 'FAIL');
  assert.equal(canRun(noBoxNoImage), false);
  const configured = diagnose(vagrantFacts({ box: { name: 'ups/bookworm', versions: [], wanted: '1.2026', configured: 'debian/bookworm64', configuredPresent: true } }));
  assert.equal(byName(configured, 'vagrant box').finding, 'debian/bookworm64 (vm.box or UPS_VM_BOX) is added');
  assert.equal(byName(diagnose(vagrantFacts({ box: { error: 'vagrant is not installed' } })), 'vagrant box').status, 'FAIL');
});

test('renderChecks: one line per check, an indented fix line for a failure, the verdict last', { timeout: 600_000 }, () => {
  const text = renderChecks('qemu', [
    { status: 'ok', name: 'qemu-img', finding: '/usr/bin/qemu-img' },
    { status: 'FAIL', name: 'qemu-system-x86_64', finding: 'not found on PATH', fix: 'apt-get install qemu-system-x86' },
    { status: 'warn', name: 'KVM', finding: 'TCG only' },
  ]);
  assert.equal(text, [
    'ok    qemu-img: /usr/bin/qemu-img',
    'FAIL  qemu-system-x86_64: not found on PATH',
    '      fix: apt-get install qemu-system-x86',
    'warn  KVM: TCG only',
    'provider qemu cannot run: 1 check failed',
    '',
  ].join('\n'));
  assert.equal(renderChecks('local', [{ status: 'warn', name: 'go', finding: 'x' }]).split('\n').at(-2), 'provider local can run (1 warning)');
});

test('virsh output: the default network\'s state and the number of DHCP leases', { timeout: 600_000 }, () => {
  const list = ' Name      State      Autostart   Persistent\n--------------------------------------------\n default   inactive   no          yes\n';
  assert.equal(defaultNetworkState(list), 'inactive');
  assert.equal(defaultNetworkState(list.replace('inactive', 'active  ')), 'active');
  assert.equal(defaultNetworkState(' Name   State   Autostart   Persistent\n----------------\n\n'), 'undefined');
  const leases = ' Expiry Time           MAC address         Protocol   IP address          Hostname   Client ID or DUID\n' +
    '-----------------------------------------------------------------------------------------------------------\n' +
    ' 2026-11-25 14:00:00   52:54:00:aa:bb:cc   ipv4       192.168.122.10/24   guest      -\n\n';
  assert.equal(countLeases(leases), 1);
  assert.equal(countLeases(leases.split('\n').slice(0, 2).join('\n')), 0);
});

function runTests(args: string[], env: Record<string, string> = {}, asUid?: number) {
  const argv = [path.join(SUITE_DIR, 'run-tests'), ...args];
  const cmd = asUid === undefined ? argv : ['setpriv', `--reuid=${asUid}`, `--regid=${asUid}`, '--clear-groups', ...argv];
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd: os.tmpdir(), env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('./run-tests --doctor --provider local: memory cgroup and disk checked, exit 0, no cgroup left behind', { timeout: 600_000 }, (t) => {
  const r = runTests(['--doctor', '--provider', 'local']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines.at(-1)!, /^provider local can run( \(\d+ warnings?\))?$/);
  assert.ok(!lines.some((l) => /qemu|vagrant|virsh|KVM/.test(l)), `local checks none of the VM machinery:\n${r.stdout}`);
  assert.match(r.stdout, /^ok    free disk: /m);
  if (process.getuid?.() === 0 && fs.existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes')) {
    assert.match(r.stdout, /^ok    memory cgroup: a cgroup v\d with a 64 MiB limit was made and removed/m);
  } else {
    t.diagnostic('not root with cgroup v1 memory: the cgroup line may be a warning');
    assert.match(r.stdout, /^(ok|warn)  memory cgroup: /m);
  }
  const left = fs.existsSync('/sys/fs/cgroup/memory') ? fs.readdirSync('/sys/fs/cgroup/memory').filter((n) => n.endsWith('-doctor')) : [];
  assert.deepEqual(left, []);
});

test('./run-tests --doctor --provider qemu: the KVM line says what the probe found; the exit code follows the guest image', { timeout: 600_000 }, async (t) => {
  if (!findTool('qemu-system-x86_64')) { t.skip(needs('vm', 'qemu-system-x86_64 is not installed')); return; }
  const r = runTests(['--doctor', '--provider', 'qemu', '--sizes', '100MiB']);
  const kvm = r.stdout.split('\n').find((l) => l.includes('  KVM: '));
  assert.ok(kvm, r.stdout);
  const img = await readGuestImage(defaultImageDir(), 12 * GiB);
  {
    if (!img) assert.match(kvm, /^warn  KVM: not probed/);
    else if (!fs.existsSync('/dev/kvm')) assert.equal(kvm, 'warn  KVM: TCG only: there is no /dev/kvm; VMs run under software emulation (timeouts x4, numbers not comparable with KVM runs)');
    else assert.match(kvm, /^(ok    KVM: usable|warn  KVM: TCG only)/);
    // Root with the build tools: a missing image is a warning (the run builds it); it is there: ok.
    assert.match(r.stdout, img ? /^ok    guest image: /m : /^warn  guest image: missing/m);
    assert.equal(r.code, 0, r.stdout + r.stderr);

    // A 6 GiB file needs a 14 GiB guest disk: the 12 GiB image is too small, and the run would rebuild it.
    const big = runTests(['--doctor', '--provider', 'qemu', '--sizes', '6GiB']);
    if (img?.manifest.disk_virtual_bytes === 12 * GiB) assert.match(big.stdout, /^warn  guest image: too small .*12 GiB < 14 GiB/m);
  }
});

test('./run-tests --doctor --provider qemu as an unprivileged user with no image: the image cannot be built, exit 1', { timeout: 600_000 }, (t) => {
  if (process.getuid?.() !== 0) { t.skip(needs('root', 'needs root to switch to uid 65534')); return; }
  // Its one failed check must be the image: with the VM packages missing, their checks fail too.
  const missing = ['qemu-system-x86_64', 'debootstrap', 'qemu-img'].filter((tool) => !findTool(tool));
  if (missing.length) { t.skip(needs('vm', `needs the VM packages (.ci/install-vm-deps): ${missing.join(', ')} not installed`)); return; }
  const reach = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'test', '-x', path.join(SUITE_DIR, 'run-tests')]);
  if (reach.status !== 0) { t.skip(needs('uid', `uid 65534 cannot run ${SUITE_DIR}/run-tests (a parent folder is closed to other users, e.g. a clone under a mode-700 temp folder)`)); return; }
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-doctor-'));
  fs.chmodSync(cache, 0o777);
  t.after(() => fs.rmSync(cache, { recursive: true, force: true }));
  const r = runTests(['--doctor', '--provider', 'qemu', '--sizes', '1MiB'], { UPS_CACHE_DIR: cache, HOME: cache, TMPDIR: cache }, 65534);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^FAIL  guest image: missing in .*, and it cannot be built here \(needs root\)$/m);
  assert.match(r.stdout, /^      fix: run \.\/run-tests --build-image as root$/m);
  assert.match(r.stdout.trim().split('\n').at(-1)!, /^provider qemu cannot run: 1 check failed$/);
});

test('./run-tests --build-image with the image cached: verifies it and prints its folder last, exit 0', { timeout: 600_000 }, async (t) => {
  if (!(await readGuestImage(defaultImageDir(), 12 * GiB))) { t.skip(needs('vm', 'no cached guest image: building one takes minutes')); return; }
  const r = runTests(['--build-image', '--sizes', '100MiB']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').at(-1), defaultImageDir());
});

test('--fix without --doctor is bad input (exit 2)', { timeout: 600_000 }, () => {
  const r = runTests(['--fix']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--fix goes with --doctor/);
});

test('the VM providers need ssh: the doctor checks it (FAIL with its package), from the same table the run checks', { timeout: 600_000 }, () => {
  for (const provider of ['qemu', 'vagrant'] as const) {
    assert.ok(toolsFor(provider).includes('ssh'), `${provider} checks ssh`);
    for (const tool of PROVIDER_TOOLS[provider]) assert.ok(toolsFor(provider).includes(tool), `${provider}: the doctor checks ${tool}`);
    const checks = diagnose({ ...(provider === 'qemu' ? qemuFacts() : vagrantFacts()), tools: { ...allTools(provider), ssh: null } });
    assert.equal(byName(checks, 'ssh').status, 'FAIL');
    assert.equal(byName(checks, 'ssh').fix, 'apt-get install openssh-client');
    assert.equal(canRun(checks), false);
  }
});
