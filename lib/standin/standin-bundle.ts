// Bundles the stand-in (lib/standin/standin.mts and busboy) into one ES module file
// that plain `node` runs without tsx or node_modules: what a VM guest gets
// (Debian bookworm's nodejs 18).
//   const file = await bundleStandin('/tmp/guest/standin.mjs')   // node standin.mjs -db data/store.db
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { cacheDir } from '../paths.ts';
import { makeDirs } from '../dirs.ts';

const STANDIN_SOURCE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'standin.mts');

/** Writes the bundle to `outFile` and returns its absolute path. */
export async function bundleStandin(outFile: string): Promise<string> {
  const out = path.resolve(outFile);
  await build({
    entryPoints: [STANDIN_SOURCE],
    outfile: out,
    bundle: true,
    platform: 'node',
    target: 'node18',
    format: 'esm',
    logLevel: 'silent',
    // busboy is CommonJS and require()s node built-ins; an ES module has no
    // `require` of its own, so the bundle gets one.
    banner: { js: "import { createRequire as __standinCreateRequire } from 'node:module'; const require = __standinCreateRequire(import.meta.url);" },
  });
  return out;
}

/**
 * The bundle for the current stand-in source, built once into the cache and
 * reused (named by the source's hash, so an edited stand-in is rebundled).
 */
export async function cachedStandinBundle(): Promise<string> {
  const hash = crypto.createHash('sha256').update(fs.readFileSync(STANDIN_SOURCE)).digest('hex').slice(0, 16);
  const file = path.join(cacheDir(), 'standin', `standin-${hash}.mjs`);
  if (fs.existsSync(file)) return file;
  makeDirs(path.dirname(file), 'the stand-in\'s cache folder');
  const tmp = `${file}.${process.pid}.tmp.mjs`;
  await bundleStandin(tmp);
  fs.renameSync(tmp, file); // concurrent runs each write their own temp file; the rename is atomic
  return file;
}
