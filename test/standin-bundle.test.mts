// The stand-in bundled into one file (lib/standin/standin-bundle.ts) runs under plain
// node, away from the suite's node_modules, as it will in a VM guest. Set
// NODE18_BIN to a Node 18 binary (Debian bookworm's nodejs) to run the bundle
// under that too; without it that case is skipped.
import { randomBytes } from 'node:crypto';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { bundleStandin } from '../lib/standin/standin-bundle.ts';
import { auth, ID_RE, MIB, removeTempDirs, sha256, startStandin, tempDir, upload } from './standin-helpers.mts';
import { needs } from './skips.mts';

after(removeTempDirs);

describe('stand-in bundle', () => {
  let bundle: string;
  before(async () => {
    // Built in one folder, run from another: the bundle needs nothing beside it.
    const built = await bundleStandin(join(await tempDir(), 'standin.mjs'));
    bundle = join(await tempDir(), 'standin.mjs');
    await copyFile(built, bundle);
  });

  const nodes: Array<[string, string | undefined]> = [
    [`this node (${process.version})`, process.execPath],
    ['NODE18_BIN', process.env.NODE18_BIN],
  ];
  for (const [label, node] of nodes) {
    test(`runs under plain node, ${label}: GET / 200, a round trip, a knob, SIGTERM`, { timeout: 300_000 }, async (t) => {
      if (!node) return t.skip(needs('node18', 'NODE18_BIN is not set (a Node 18 binary, e.g. Debian bookworm nodejs 18)'));
      const s = await startStandin({ command: [node, bundle], args: ['--status', '418'] });
      const knobbed = await upload(s.base, { cookie: await auth(s.base), size: MIB });
      assert.equal(knobbed.status, 418, 'flags reach the bundled stand-in');
      assert.deepEqual(await s.stop(), { code: 0, signal: null });

      const plain = await startStandin({ command: [node, bundle] });
      try {
        const version = await request(plain.base + '/');
        await version.body.dump();
        assert.equal(version.statusCode, 200);
        const data = randomBytes(2 * MIB + 7);
        const up = await upload(plain.base, { cookie: await auth(plain.base), data });
        assert.equal(up.status, 200, up.text);
        const { id } = JSON.parse(up.text) as { id: string };
        assert.match(id, ID_RE);
        const back = await request(`${plain.base}/-${id}`);
        assert.equal(sha256(Buffer.from(await back.body.arrayBuffer())), sha256(data));
      } finally {
        assert.deepEqual(await plain.stop(), { code: 0, signal: null });
      }
    });
  }
});
