// The shape of lib/: the import graph of the suite's own modules has no cycle,
// and the pure folders (statistics and verdicts, renderers) reach neither the
// file system nor processes, not even through a module they import. Read
// from the sources' import lines, type-only imports included for cycles.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SUITE_DIR } from '../lib/paths.ts';

/** Folders whose modules touch neither the file system nor processes. */
const PURE_FOLDERS = ['lib/stats', 'lib/render'];
const IMPURE = /^(node:fs|node:fs\/promises|node:child_process|zx|fs-extra)$/;

interface Module { file: string; imports: { spec: string; typeOnly: boolean }[] }

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name.startsWith('.') ? [] : sources(p);
    return /\.m?ts$/.test(e.name) ? [p] : [];
  });
}

function readModule(file: string): Module {
  const text = fs.readFileSync(file, 'utf8');
  const imports: Module['imports'] = [];
  // Static imports and re-exports (one statement may span lines), and dynamic import('...').
  for (const m of text.matchAll(/^(import|export)\s+(type\s+)?[^;'"]*?from\s+'([^']+)'/gms)) imports.push({ spec: m[3], typeOnly: Boolean(m[2]) });
  for (const m of text.matchAll(/^import\s+'([^']+)'/gm)) imports.push({ spec: m[1], typeOnly: false });
  for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) imports.push({ spec: m[1], typeOnly: false });
  return { file, imports };
}

const resolve = (from: string, spec: string) => (spec.startsWith('.') ? path.resolve(path.dirname(from), spec) : spec);
const rel = (f: string) => path.relative(SUITE_DIR, f);

const lib = sources(path.join(SUITE_DIR, 'lib')).map(readModule);
const byFile = new Map(lib.map((m) => [m.file, m]));

test('every relative import of lib/ names a file that exists', () => {
  for (const m of lib) {
    for (const i of m.imports) {
      if (i.spec.startsWith('.')) assert.ok(fs.existsSync(resolve(m.file, i.spec)), `${rel(m.file)} imports ${i.spec}, which does not exist`);
    }
  }
});

test('the import graph of lib/ has no cycle (type-only imports included)', () => {
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (file: string, stack: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') { cycles.push([...stack.slice(stack.indexOf(file)), file].map(rel).join(' -> ')); return; }
    state.set(file, 'open');
    for (const i of byFile.get(file)?.imports ?? []) {
      const target = resolve(file, i.spec);
      if (byFile.has(target)) visit(target, [...stack, file]);
    }
    state.set(file, 'done');
  };
  for (const m of lib) visit(m.file, []);
  assert.deepEqual(cycles, []);
});

test('the pure folders reach neither the file system nor processes, directly or through what they import', () => {
  const pure = lib.filter((m) => PURE_FOLDERS.some((d) => rel(m.file).startsWith(`${d}/`)));
  assert.ok(pure.length >= 8, `the pure folders hold ${pure.length} modules: ${PURE_FOLDERS.join(', ')} missing?`);
  const problems: string[] = [];
  for (const start of pure) {
    const seen = new Set<string>();
    const walk = (file: string, via: string[]) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const i of byFile.get(file)?.imports ?? []) {
        if (i.typeOnly) continue;
        if (IMPURE.test(i.spec)) problems.push(`${[...via, file].map(rel).join(' -> ')} imports ${i.spec}`);
        const target = resolve(file, i.spec);
        if (byFile.has(target)) walk(target, [...via, file]);
      }
    };
    walk(start.file, []);
  }
  assert.deepEqual([...new Set(problems)], []);
});
