// JUnit XML, the format every CI's test view reads (GitLab artifacts:reports:junit,
// CircleCI store_test_results, Jenkins, Buildkite), so a verdict shows beside the
// project's other tests, with history. Valid against the JUnit schema Jenkins
// documents (test/fixtures/junit-10.xsd).
//
//   renderJunit([comparisonSuite(comparison)])    // compare-runs, run-tests, merge-runs --junit
//   renderJunit([{ name: 'bisect', cases: [{ classname: 'bisect', name: '...', outcome: 'failed', message: '...' }] }])
//
// A testcase fails only where the run's exit code does (a case slower, newly
// failing or failing more often); it is skipped, with the reason, when the
// sample cannot tell or the case is ignored (matrix.yaml judgment); else it passes
// with its verdict in system-out. Pure: data in, text out.
import type { CaseComparison, Comparison, MetricComparison } from '../stats/compare.ts';
import { fmtInterval, fmtP } from './compare-report.ts';

export interface JunitCase {
  classname: string;
  name: string;
  outcome: 'passed' | 'failed' | 'skipped';
  /** One line: the verdict, the change with its interval. */
  message: string;
  /** Longer text: the failure's body, or system-out of a passed case. */
  details?: string;
}

export interface JunitSuite {
  name: string;
  cases: JunitCase[];
  /** ISO 8601, when the measured run started. */
  timestamp?: string;
  properties?: Record<string, string>;
}

const text = (s: string) =>
  // Characters XML 1.0 cannot hold at all (control codes but tab, newline, return) are dropped.
  s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
// An attribute is one line: CI views show names and messages in one (and XML reads a raw newline there as a space).
const attrs = (o: Record<string, string | number | undefined>) =>
  Object.entries(o).filter(([, v]) => v !== undefined).map(([k, v]) => ` ${k}="${text(String(v)).replace(/"/g, '&quot;').replace(/\s*[\r\n\t]\s*/g, ' ')}"`).join('');

function renderCase(c: JunitCase): string {
  const open = `    <testcase${attrs({ classname: c.classname, name: c.name })}>`;
  const body =
    c.outcome === 'failed' ? `      <failure${attrs({ type: 'regression', message: c.message })}>${text(c.details ?? c.message)}</failure>`
      : c.outcome === 'skipped' ? `      <skipped${attrs({ message: c.message })}/>`
        : `      <system-out>${text(c.details ?? c.message)}</system-out>`;
  return `${open}\n${body}\n    </testcase>`;
}

/** A JUnit document: <testsuites> with one <testsuite> per suite. */
export function renderJunit(suites: JunitSuite[], name = 'upload-perf'): string {
  const count = (cs: JunitCase[], o: JunitCase['outcome']) => cs.filter((c) => c.outcome === o).length;
  const all = suites.flatMap((s) => s.cases);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attrs({ name, tests: all.length, failures: count(all, 'failed'), errors: 0 })}>`,
  ];
  for (const s of suites) {
    lines.push(`  <testsuite${attrs({
      name: s.name, tests: s.cases.length, failures: count(s.cases, 'failed'), errors: 0, skipped: count(s.cases, 'skipped'), timestamp: s.timestamp,
    })}>`);
    const props = Object.entries(s.properties ?? {});
    if (props.length) {
      lines.push('    <properties>', ...props.map(([k, v]) => `      <property${attrs({ name: k, value: v })}/>`), '    </properties>');
    }
    lines.push(...s.cases.map(renderCase), '  </testsuite>');
  }
  lines.push('</testsuites>', '');
  return lines.join('\n');
}

/** "10MiB @ 256MB", or "64MiB ×4 @ 256MB": how a case is named in reports. */
export const caseLabel = (k: Pick<CaseComparison, 'fileSize' | 'memoryLimit'>) => `${k.fileSize} @ ${k.memoryLimit}`;

function metricCase(k: CaseComparison, m: MetricComparison, classname: string): JunitCase {
  const change = m.change ? `${fmtInterval(m)}, p (adj.) ${fmtP(m.pAdjusted)}` : 'no change computed';
  const band = k.noisePct !== null ? ` (noise band ±${k.noisePct}%)` : '';
  const name = `${caseLabel(k)}: ${m.metric.title}`;
  const judged = `${m.verdict}${band}: ${change}`;
  if (k.ignored !== null) return { classname, name, outcome: 'skipped', message: `ignored: ${k.ignored} (judged ${judged})` };
  if (m.verdict === 'inconclusive') {
    const could = m.detectable ? `; the sample could detect ±${m.detectable.pct.toFixed(1)}%` : '';
    return { classname, name, outcome: 'skipped', message: `inconclusive${band}: ${change}${could}` };
  }
  // Only throughput decides the exit code; a worse secondary metric is reported, not failed.
  const worse = m.verdict === m.metric.words[1];
  const fails = worse && m.metric.key === 'throughput_mib_s';
  const note = worse && !fails ? ' (reported, not failed: throughput and failures decide, as the exit code does)' : '';
  return { classname, name, outcome: fails ? 'failed' : 'passed', message: judged + note };
}

function failureCase(k: CaseComparison, classname: string): JunitCase {
  const rate = (s: CaseComparison['base']) => `${s.failures.length}/${s.rows.length}`;
  const reasons = k.newExitReasons.length ? ` (${k.newExitReasons.join(', ')})` : '';
  const message = `${k.failures}: ${rate(k.cand)} failed vs ${rate(k.base)} in the baseline${reasons}`;
  const name = `${caseLabel(k)}: failures`;
  if (k.ignored !== null) return { classname, name, outcome: 'skipped', message: `ignored: ${k.ignored} (judged ${message})` };
  return { classname, name, outcome: k.failures === 'regressed' || k.failures === 'fails more' ? 'failed' : 'passed', message };
}

/** A comparison's testcases: one per case and metric that has a verdict, and one per case whose failures differ. */
export function comparisonSuite(c: Comparison, timestamp = c.cand.config?.started_at): JunitSuite {
  const classname = `upload-perf.${c.cand.name}`;
  return {
    name: `upload-perf: ${c.cand.name} against ${c.base.name}`,
    timestamp: timestamp || undefined,
    properties: { baseline: c.base.name, candidate: c.cand.name, alpha: String(c.thresholds.alpha), noise_pct: String(c.thresholds.noisePct) },
    cases: c.cases.flatMap((k) => [
      ...(k.failures !== null ? [failureCase(k, classname)] : []),
      ...k.metrics.filter((m) => m.verdict !== null).map((m) => metricCase(k, m, classname)),
    ]),
  };
}
