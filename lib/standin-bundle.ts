// Bundles the stand-in (lib/standin.mts and busboy) into one ES module file
// that plain `node` runs without tsx or node_modules: what a VM guest gets
// (Debian bookworm's nodejs 18).
//   const file = await bundleStandin('/tmp/guest/standin.mjs')   // node standin.mjs -db data/store.db
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

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
