// JUnit files checked as a CI would read them: against the JUnit schema Jenkins
// validates with (test/fixtures/junit-10.xsd, via xmllint compiled to wasm, so
// no system tool is needed), then parsed with a real XML parser into testcases.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { validateXML } from 'xmllint-wasm';
import { SUITE_DIR } from '../lib/paths.ts';

const XSD = path.join(SUITE_DIR, 'test', 'fixtures', 'junit-10.xsd');

/** Fails with xmllint's messages unless `xml` is valid against the JUnit schema. */
export async function assertValidJunit(xml: string): Promise<void> {
  const r = await validateXML({ xml: [{ fileName: 'junit.xml', contents: xml }], schema: [{ fileName: 'junit-10.xsd', contents: fs.readFileSync(XSD, 'utf8') }] });
  assert.ok(r.valid, `not valid against junit-10.xsd:\n${r.errors.map((e) => e.rawMessage).join('\n')}`);
}

export interface ParsedCase { suite: string; classname: string; name: string; outcome: 'passed' | 'failed' | 'skipped'; message: string | null; text: string | null }

/** Every testcase of a JUnit document, with its suite and outcome; the suites' counts are checked against them. */
export function parseJunit(xml: string): { suites: Record<string, any>[]; cases: ParsedCase[] } {
  const doc = new XMLParser({
    ignoreAttributes: false, attributeNamePrefix: '', parseAttributeValue: false, textNodeName: '#text',
    isArray: (name) => ['testsuite', 'testcase', 'property'].includes(name),
  }).parse(xml, true);
  const suites: Record<string, any>[] = doc.testsuites.testsuite ?? [];
  const cases = suites.flatMap((s) => (s.testcase ?? []).map((c: any): ParsedCase => {
    const body = c.failure ?? c.skipped;
    const textOf = (x: any) => (x === undefined ? null : typeof x === 'string' ? x : (x['#text'] ?? null));
    return {
      suite: s.name, classname: c.classname, name: c.name,
      outcome: c.failure !== undefined ? 'failed' : c.skipped !== undefined ? 'skipped' : 'passed',
      message: body === undefined ? null : (body.message ?? null),
      text: c.failure !== undefined ? textOf(c.failure) : textOf(c['system-out']),
    };
  }));
  for (const s of suites) {
    const mine = cases.filter((c) => c.suite === s.name);
    assert.equal(Number(s.tests), mine.length, `${s.name}: tests`);
    assert.equal(Number(s.failures), mine.filter((c) => c.outcome === 'failed').length, `${s.name}: failures`);
    assert.equal(Number(s.skipped), mine.filter((c) => c.outcome === 'skipped').length, `${s.name}: skipped`);
  }
  assert.equal(Number(doc.testsuites.tests), cases.length);
  return { suites, cases };
}
