// Renders a Comparison (lib/stats/compare.ts) as compare.md through
// templates/compare.md.mustache, and as compare.json for machines. Pure: the
// caller reads the template and writes the result; numbers are formatted
// here, with their units.
import Mustache from 'mustache';
import { comparisonKey, type CaseComparison, type Comparison, type MetricComparison, type Summary } from '../stats/compare.ts';
import type { RunRecord } from '../run-record.ts';

const MiB = 2 ** 20;

/** Three significant digits without exponent notation: 1234 -> "1234", 95.34 -> "95.3", 0.01234 -> "0.0123". */
export function fmtNum(x: number): string {
  if (Math.abs(x) >= 1000) return x.toFixed(0);
  return String(Number(x.toPrecision(3)));
}

export function fmtP(p: number | null): string {
  if (p === null) return '—';
  return p < 0.001 ? '<0.001' : p.toFixed(3);
}

export function fmtChange(pct: number | null): string {
  if (pct === null) return '—';
  const s = pct.toFixed(1);
  return s === '-0.0' || pct >= 0 ? `+${s.replace('-', '')}%` : `${s}%`;
}

/** A change with its interval: "-4.1% [-9.0%, +0.8%]"; an unbounded end is "-∞" or "+∞". */
export function fmtInterval(m: Pick<MetricComparison, 'changePct' | 'loPct' | 'hiPct' | 'change'>): string {
  if (m.changePct === null || !m.change) return '—';
  const lo = m.change.lo === -Infinity ? '-∞' : fmtChange(m.loPct);
  const hi = m.change.hi === Infinity ? '+∞' : fmtChange(m.hiPct);
  return `${fmtChange(m.changePct)} [${lo}, ${hi}]`;
}

function fmtSummary(s: Summary | null, unit: string): string {
  if (!s) return '—';
  const scale = unit === 'MiB' ? MiB : 1;
  return `${fmtNum(s.median / scale)} ±${s.spreadPct.toFixed(0)}%`;
}

function cell(v: unknown): string {
  if (v === undefined || v === null || v === '') return '—';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function settingsRows(a: RunRecord | null, b: RunRecord | null): { label: string; base: string; cand: string }[] {
  const rows: [string, (c: RunRecord) => unknown][] = [
    ['server git commit', (c) => c.server.git?.commit],
    ['server git branch', (c) => c.server.git?.branch],
    ['server tree dirty', (c) => c.server.git?.dirty],
    ['server', (c) => [c.server.kind, c.server.path].filter(Boolean).join(' ')],
    ['stand-in settings', (c) => Object.entries(c.server.standin_env ?? {}).map(([k, v]) => `${k}=${v}`).join(' ')],
    ['provider', (c) => c.provider],
    ['iterations (warm-up)', (c) => `${c.matrix.iterations} (${c.matrix.warmup_iterations})`],
    ['file sizes', (c) => c.matrix.sizes.map((s) => s.label).join(', ')],
    ['memory limits (MB)', (c) => c.matrix.memory_limits_mb.join(', ')],
    ['host', (c) => `${c.host.hostname || '?'}, ${c.host.cores || '?'} cores, ${c.host.cpu_model || '?'}`],
    ['kernel', (c) => c.host.kernel],
    ['suite', (c) => c.suite_version && `${c.suite_version}${c.suite_git?.commit ? ` (${c.suite_git.commit.slice(0, 12)}${c.suite_git.dirty ? ', dirty' : ''})` : ''}`],
    ['started at', (c) => c.started_at],
    ['finished', (c) => (c.finished ? 'yes' : `no (${c.stop_reason ?? '?'})`)],
  ];
  return rows.map(([label, get]) => ({ label, base: cell(a && get(a)), cand: cell(b && get(b)) }));
}

/** "fails more: 3/3 vs 1/3 (oom_killed)": failed / all iterations, candidate first as the verb's subject. */
function failureText(k: CaseComparison): string | null {
  if (!k.failures) return null;
  const rate = (s: CaseComparison['base']) => `${s.failures.length}/${s.rows.length}`;
  const reasons = k.newExitReasons.length > 0 ? ` (${k.newExitReasons.join(', ')})` : '';
  return `${k.failures}: ${rate(k.cand)} vs ${rate(k.base)}${reasons}`;
}

/** "500MiB @ 256MB" for a case key (lib/cases.ts caseKey) of the comparison. */
function caseLabel(c: Comparison, key: string): string {
  const k = c.cases.find((x) => comparisonKey(x) === key);
  return k ? `${k.fileSize} @ ${k.memoryLimit}` : key;
}

function metricVerdict(k: CaseComparison, i: number): string {
  const m = k.metrics[i];
  const word = m.verdict === 'inconclusive' && m.detectable ? `inconclusive (could detect ±${m.detectable.pct.toFixed(1)}%)` : m.verdict;
  // The throughput row also carries the case's failures, so they show up where people look first.
  // With the pooled rule on, the throughput verdict says which rule stopped the case.
  const by = i === 0 && k.stoppedBy ? `${word} (stopped by ${k.stoppedBy === 'own rule' ? 'its own rule' : k.stoppedBy === 'pooled' ? 'the pool' : 'the cap'})` : word;
  const parts = i === 0 ? [failureText(k), by] : [word];
  const text = parts.filter((x) => x !== null).join('; ') + (k.noisePct !== null && m.verdict !== null ? ` (noise ±${k.noisePct}%)` : '');
  // matrix.yaml's judgment: an ignored case shows what it was judged, and that it counts for nothing.
  if (k.ignored !== null) return `ignored: ${k.ignored}${text === '' ? '' : ` (judged: ${text})`}`;
  return text === '' ? '—' : text;
}

/** "5 v 5" for separate runs; "12 pairs" paired by round; "24 of 30 rounds" when a stopping rule judged the first 24. */
function sampleSize(k: CaseComparison, m: MetricComparison): string {
  if (!k.paired || !m.change) return `${m.base?.n ?? 0} v ${m.cand?.n ?? 0}`;
  const pairs = m.change.n as number;
  return m.metric.key === 'throughput_mib_s' && k.rounds !== null ? `${k.rounds} rounds` : `${pairs} pairs`;
}

/** The comparison's one-line verdict, as compare.md's summary and compare.json say it. */
export function overallVerdict(c: Comparison): string {
  const inc = c.inconclusive;
  // A regression found elsewhere stands; otherwise cases that cannot tell forbid "no change".
  return c.exitCode === 1
    ? `REGRESSED: ${c.counts.slower} case(s) slower, ${c.counts.newlyFailed} newly failed, ${c.counts.failsMore} failing more often`
    : inc
      ? `inconclusive: ${inc.cases} case(s) cannot tell a ${c.thresholds.noisePct}% change from noise` +
        (inc.iterationsNeeded !== null ? `; run with --iterations ${inc.iterationsNeeded} or more, or interleaved (--ref A --ref B)` : '')
      : c.counts.faster > 0 || c.counts.fixed > 0 || c.counts.failsLess > 0
        ? 'improved, nothing regressed'
        : `no change beyond ±${c.thresholds.noisePct}%`;
}

/** The Markdown comparison; `chart` is the SVG's path relative to compare.md. */
export function renderCompare(c: Comparison, template: string, chart: string): string {
  const overall = overallVerdict(c);
  const view = {
    base: c.base,
    cand: c.cand,
    alpha: c.thresholds.alpha,
    noisePct: c.thresholds.noisePct,
    confidence: Number(((1 - c.thresholds.alpha) * 100).toFixed(6)),
    paired: c.cases.some((k) => k.paired),
    rule: c.stoppingRule && {
      looks: c.stoppingRule.looks.join(', '),
      alpha: c.stoppingRule.alpha,
      cases: c.stoppingRule.cases,
      noisePct: c.stoppingRule.noise_pct,
      sameConfidence: c.stoppingRule.same_confidence !== undefined ? Number((c.stoppingRule.same_confidence * 100).toFixed(6)) : null,
    },
    geomeanCases: c.geomeanCases,
    geomean: c.throughputGeomean === null ? '—' : `${c.throughputGeomean.toFixed(3)} (${fmtChange((c.throughputGeomean - 1) * 100)})`,
    counts: c.counts,
    ignoredCases: c.counts.ignored > 0 ? c.cases.filter((k) => k.ignored !== null).map((k) => `${k.fileSize} @ ${k.memoryLimit} (${k.ignored})`).join('; ') : null,
    overall,
    pooled: c.pooled && {
      cases: c.pooled.cases, rounds: c.pooled.rounds, noisePct: c.thresholds.noisePct, confidence: c.pooled.confidencePct,
      weighting: c.pooled.weighting === 'precision' ? 'cases weighted by precision' : 'every round alike',
      change: `${fmtChange(c.pooled.changePct)} [${fmtChange(c.pooled.loPct)}, ${fmtChange(c.pooled.hiPct)}]`,
      reading: c.pooled.inside ? `inside ±${c.thresholds.noisePct}%` : `not inside ±${c.thresholds.noisePct}%`,
      strays: c.pooled.strays.length ? `; straying beyond their bands: ${c.pooled.strays.map((key) => caseLabel(c, key)).join(', ')}` : '; no case strays',
      matrix: c.pooled.inside && c.pooled.strays.length === 0 && c.cases.every((k) => k.verdict === 'same') ? 'the matrix is `same`' : 'the matrix is not all `same`',
    },
    steadiest: c.steadiestChange
      ? `${c.steadiestChange.metric.title}, ${c.steadiestChange.fileSize} @ ${c.steadiestChange.memoryLimit}: ${c.steadiestChange.verdict} ` +
        `${fmtChange(c.steadiestChange.changePct)} (spread ±${c.steadiestChange.spreadPct.toFixed(1)}% within a side)`
      : 'none changed',
    hasOnlyOneSide: c.onlyOneSide.length > 0,
    onlyOneSide: c.onlyOneSide,
    hasWarnings: c.warnings.length > 0,
    warnings: c.warnings,
    settings: settingsRows(c.base.config, c.cand.config),
    chart,
    metrics: (c.cases[0]?.metrics ?? []).map((m0, i) => ({
      title: m0.metric.title,
      unit: m0.metric.unit,
      secondary: i > 0,
      stopped: !!c.stoppingRule,
      rows: c.cases.map((k) => {
        const m = k.metrics[i];
        return {
          fileSize: k.fileSize,
          memoryLimit: k.memoryLimit,
          n: sampleSize(k, m),
          base: fmtSummary(m.base, m.metric.unit),
          cand: fmtSummary(m.cand, m.metric.unit),
          change: fmtInterval(m),
          p: fmtP(m.pAdjusted),
          verdict: metricVerdict(k, i),
        };
      }),
      // A metric no case measured on either side (e.g. no memory sampling) gets no table.
      measured: c.cases.some((k) => k.metrics[i].base || k.metrics[i].cand),
    })).filter((t) => t.measured),
  };
  return Mustache.render(template, view, {}, { escape: (s: string) => s });
}

/** compare.json: the comparison for machines, percent changes with their intervals (null where unbounded). */
export function compareJson(c: Comparison): string {
  const finite = (x: number | null) => (x === null || !Number.isFinite(x) ? null : x);
  return `${JSON.stringify(
    {
      baseline: c.base.name,
      candidate: c.cand.name,
      alpha: c.thresholds.alpha,
      noise_pct: c.thresholds.noisePct,
      stopping_rule: c.stoppingRule,
      ...(c.pooled ? {
        pooled: {
          change_pct: c.pooled.changePct, interval_pct: [c.pooled.loPct, c.pooled.hiPct], confidence_pct: c.pooled.confidencePct, weighting: c.pooled.weighting, cases: c.pooled.cases, rounds: c.pooled.rounds,
          inside_noise: c.pooled.inside, strays: c.pooled.strays,
          matrix_same: c.pooled.inside && c.pooled.strays.length === 0 && c.cases.every((k) => k.verdict === 'same'),
        },
      } : {}),
      serial: c.serial && { cases: c.serial.cases, rounds: c.serial.rounds, lag1: c.serial.r1, z: c.serial.z, present: c.serial.present, variance_factor: c.serial.inflation },
      machine_shift: c.machineShift,
      exit_code: c.exitCode,
      verdict: overallVerdict(c),
      counts: c.counts,
      throughput_geomean: c.throughputGeomean,
      inconclusive: c.inconclusive,
      steadiest_change: c.steadiestChange && {
        metric: c.steadiestChange.metric.key, file_size: c.steadiestChange.fileSize, memory_limit: c.steadiestChange.memoryLimit,
        verdict: c.steadiestChange.verdict, change_pct: c.steadiestChange.changePct, spread_pct: c.steadiestChange.spreadPct,
      },
      cases: c.cases.map((k) => ({
        file_size: k.fileSize,
        memory_limit: k.memoryLimit,
        concurrency: k.concurrency,
        verdict: k.verdict,
        failures: k.failures,
        noise_pct: k.noisePct,
        ignored: k.ignored,
        failure_rate: { baseline: [k.base.failures.length, k.base.rows.length], candidate: [k.cand.failures.length, k.cand.rows.length] },
        paired: k.paired,
        rounds: k.rounds,
        ...(k.stoppedBy !== undefined ? { stopped_by: k.stoppedBy } : {}),
        metrics: Object.fromEntries(
          k.metrics.map((m) => [
            m.metric.key,
            {
              n: m.change?.n ?? [m.base?.n ?? 0, m.cand?.n ?? 0],
              baseline_median: m.base?.median ?? null,
              candidate_median: m.cand?.median ?? null,
              change_pct: finite(m.changePct),
              interval_pct: m.change ? [m.change.lo === -Infinity ? null : finite(m.loPct), finite(m.hiPct)] : null,
              confidence: m.change?.confidence ?? null,
              method: m.change?.method ?? null,
              p: m.p,
              p_adjusted: m.pAdjusted,
              verdict: m.verdict,
              detectable_pct: m.detectable?.pct ?? null,
              iterations_to_detect_noise: m.detectable?.iterations ?? null,
            },
          ]),
        ),
      })),
      only_one_side: c.onlyOneSide,
      warnings: c.warnings,
    },
    null,
    2,
  )}\n`;
}
