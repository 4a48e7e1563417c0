// The guest image's pure parts on literal data: which Debian mirror apt
// already uses. Building and booting the image is exercised in qemu.test.mts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_DISK_BYTES, diskBytesFor, mirrorFromAptSources } from '../lib/providers/image.ts';

test('mirrorFromAptSources: deb822 .sources, skipping security, disabled and deb-src entries', { timeout: 120_000 }, () => {
  const sources = [
    'Types: deb-src', 'URIs: http://src.example/debian', 'Suites: bookworm', 'Components: main', '',
    'Types: deb', 'URIs: http://off.example/debian', 'Suites: bookworm', 'Enabled: no', '',
    '# a comment', 'Types: deb', 'URIs: http://deb.debian.org/debian/', 'Suites: bookworm bookworm-updates', 'Components: main', '',
    'Types: deb', 'URIs: http://deb.debian.org/debian-security', 'Suites: bookworm-security', '',
  ].join('\n');
  assert.equal(mirrorFromAptSources([{ name: '/etc/apt/sources.list.d/debian.sources', text: sources }], 'bookworm'), 'http://deb.debian.org/debian');
});

test('mirrorFromAptSources: one-line .list with options; first match wins; none gives null', { timeout: 120_000 }, () => {
  const list = [
    '# deb http://commented.example/debian bookworm main',
    'deb http://security.debian.org/debian-security bookworm-security main',
    'deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian bookworm main contrib',
  ].join('\n');
  const files = [
    { name: '/etc/apt/sources.list', text: list },
    { name: '/etc/apt/sources.list.d/other.list', text: 'deb http://later.example/debian bookworm main' },
  ];
  assert.equal(mirrorFromAptSources(files, 'bookworm'), 'http://mirror.example/debian');
  assert.equal(mirrorFromAptSources(files, 'trixie'), null);
  assert.equal(mirrorFromAptSources([{ name: '/etc/apt/sources.list.d/x.sources.disabled', text: 'Types: deb\nURIs: http://x/\nSuites: bookworm' }], 'bookworm'), null);
});

test('diskBytesFor: the largest file twice over plus 2 GiB, never below the default', { timeout: 120_000 }, () => {
  const GiB = 1024 ** 3;
  assert.equal(diskBytesFor(100 * 1024 ** 2), DEFAULT_DISK_BYTES);
  assert.equal(DEFAULT_DISK_BYTES, 12 * GiB);
  assert.equal(diskBytesFor(10 * GiB), 22 * GiB);
});
