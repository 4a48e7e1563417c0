// Unit parsing and formatting: each unit means what it says.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, parseMemoryMb, parsePositiveInt, parseSize } from '../lib/units.ts';

test('sizes: binary and decimal units', { timeout: 120_000 }, () => {
  const table: [string, number][] = [
    ['1024B', 1024], ['1B', 1], ['1TiB', 1024 ** 4], ['1.1KB', 1100], ['1KiB', 1024], ['100MiB', 104857600], ['5GiB', 5368709120],
    ['1KB', 1000], ['500MB', 500_000_000], ['2GB', 2_000_000_000], ['1.5 GiB', 1610612736], [' 10MiB ', 10485760],
  ];
  for (const [text, bytes] of table) assert.equal(parseSize(text), bytes, text);
});

test('sizes: bad input is rejected with the reason', { timeout: 120_000 }, () => {
  assert.throws(() => parseSize('10MIB'), /unknown unit "MIB"/);
  assert.throws(() => parseSize('10 mb'), /unknown unit "mb"/);
  assert.throws(() => parseSize('ten'), /not a size/);
  assert.throws(() => parseSize('-5MiB'), /not a size/);
  assert.throws(() => parseSize('0MiB'), /^Error: must be at least 1 byte$/);
  assert.throws(() => parseSize(''), /not a size/);
});

test('formatting bytes', { timeout: 120_000 }, () => {
  assert.equal(formatBytes(104857600), '100 MiB');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(5 * 1024 ** 3), '5 GiB');
  assert.equal(formatBytes(512), '512 B');
});

test('memory limits and counts', { timeout: 120_000 }, () => {
  assert.equal(parseMemoryMb(256), 256);
  assert.equal(parseMemoryMb('512MB'), 512);
  assert.throws(() => parseMemoryMb('0'), /positive/);
  assert.throws(() => parseMemoryMb('1.5'), /positive whole/);
  assert.equal(parsePositiveInt('7'), 7);
  assert.throws(() => parsePositiveInt('-1'), /positive/);
});
