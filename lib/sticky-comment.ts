// One pull-request comment per PR that every run edits in place ("sticky"),
// as coverage tools do: found by a hidden marker, updated when there, created
// when not, and cut to GitHub's size limit with the verdict kept.
//
//   const body = commentBody({ compareMd, compareJson, runUrl, baseline })   // pure
//   const r = await upsertComment({ api, token, repo: 'o/r', pr: 12 }, body) // { action: 'updated', url }
//
// Three GitHub REST calls: list the comments (paged), create one,
// update one (sticky-comment.mts is the command; it reads the files and falls
// back to the job summary when the token cannot write).
import { request } from 'undici';

/** Hidden in the rendered comment; the sticky comment is the one that holds it. */
export const MARKER = '<!-- upload-perf-suite: sticky comparison comment (edited in place on every run) -->';
/** GitHub refuses a comment body longer than this (characters). */
export const GITHUB_COMMENT_LIMIT = 65536;

interface CaseJson {
  file_size: string;
  memory_limit: string;
  verdict: string;
  failures: string | null;
  failure_rate: { baseline: [number, number]; candidate: [number, number] };
  ignored?: string | null;
  noise_pct?: number | null;
  metrics: Record<string, { change_pct: number | null; interval_pct: [number | null, number | null] | null }>;
}

export interface CommentInput {
  /** compare-runs' compare.md. */
  compareMd: string;
  /** compare-runs' compare.json, parsed. */
  compareJson: { baseline: string; candidate: string; verdict?: string; cases: CaseJson[] };
  /** Where the run's artifacts are (the workflow run's page). */
  runUrl: string | null;
  /** How the baseline was chosen, e.g. "merge base 1a2b3c of main and 4d5e6f". */
  baseline: string | null;
  limit?: number;
}

const pct = (x: number | null) => (x === null ? '?' : `${x >= 0 ? '+' : ''}${x.toFixed(1)}%`);

/** The summary's bullet lines of compare.md (counts, verdict, steadiest metric). */
function summaryLines(md: string): string[] {
  const at = md.indexOf('\n## Summary\n');
  if (at < 0) return [];
  const rest = md.slice(at + '\n## Summary\n'.length);
  const end = rest.search(/\n## |\n\n[^-\n]/);
  return (end < 0 ? rest : rest.slice(0, end)).split('\n').filter((l) => l.startsWith('- '));
}

/** Cases whose throughput or failures changed, or that matrix.yaml's judgment ignored. */
function changedRows(cases: CaseJson[]): string[] {
  return cases
    .filter((k) => k.verdict === 'faster' || k.verdict === 'slower' || k.failures !== null || k.ignored)
    .map((k) => {
      const t = k.metrics.throughput_mib_s;
      const interval = t?.interval_pct ? ` [${t.interval_pct[0] === null ? '-∞' : pct(t.interval_pct[0])}, ${t.interval_pct[1] === null ? '+∞' : pct(t.interval_pct[1])}]` : '';
      const rate = (r: [number, number]) => `${r[0]}/${r[1]}`;
      const failures = k.failures ? `${k.failures}: ${rate(k.failure_rate.candidate)} vs ${rate(k.failure_rate.baseline)}` : '—';
      const verdict = k.ignored ? `ignored: ${k.ignored} (judged: ${k.verdict})` : k.verdict + (k.noise_pct != null ? ` (noise ±${k.noise_pct}%)` : '');
      return `| ${k.file_size} | ${k.memory_limit} | ${t?.change_pct == null ? '—' : pct(t.change_pct) + interval} | ${failures} | ${verdict.replace(/\|/g, '\\|')} |`;
    });
}

/**
 * The comment: marker, verdict, baseline, summary, the table of changed cases, the artifacts link, then the full
 * compare.md folded. Over the limit, the full comparison is cut first, then the table's tail; the verdict,
 * summary and link always stay.
 */
export function commentBody(input: CommentInput): string {
  const limit = input.limit ?? GITHUB_COMMENT_LIMIT;
  const j = input.compareJson;
  const summary = summaryLines(input.compareMd);
  const verdict = j.verdict ?? summary.find((l) => l.startsWith('- Verdict: '))?.slice('- Verdict: '.length) ?? 'unknown';
  const head = [
    MARKER,
    `## Upload performance: \`${j.candidate}\` against \`${j.baseline}\``,
    '',
    `**Verdict: ${verdict}**`,
    '',
    ...(input.baseline ? [`Baseline: ${input.baseline}.`, ''] : []),
    ...summary.filter((l) => !l.startsWith('- Verdict: ')),
  ].join('\n');
  const link = input.runUrl ? `\n\nCharts, compare.md, compare.json and every run's raw.csv: [the run's artifacts](${input.runUrl}).` : '';
  const rows = changedRows(j.cases);
  const tableHead = ['', '### Changed cases', '', '| file size | memory limit | throughput change [interval] | failures | verdict |', '|---|---|---:|---|---|'];
  const full = input.compareMd.split('\n').filter((l) => !l.startsWith('![')).join('\n').replace(/^# .*\n/, '');
  const details = (text: string) => `\n\n<details><summary>The full comparison</summary>\n\n${text}\n</details>`;
  const cutNote = (what: string) => `\n\n_${what} cut to fit GitHub's ${limit}-character comment limit; the whole comparison is in the artifacts._`;

  const table = rows.length ? `${tableHead.join('\n')}\n${rows.join('\n')}` : '\n\nNo case changed its throughput or failures.';
  const whole = `${head}\n${table}${link}${details(full)}`;
  if (whole.length <= limit) return whole;
  // The full comparison first: as much of it as fits, cut at a line.
  const fixed = `${head}\n${table}${link}`;
  const note = cutNote('The full comparison was');
  const room = limit - fixed.length - details('').length - note.length;
  if (room > 200) {
    const cut = full.slice(0, room);
    return `${fixed}${details(cut.slice(0, Math.max(0, cut.lastIndexOf('\n'))))}${note}`;
  }
  // Then the table's rows, from the end; the head (marker, verdict, summary) and the link always stay.
  const rowsNote = cutNote('The table of changed cases was');
  let kept = rows.length;
  const body = (n: number) => `${head}\n${tableHead.join('\n')}\n${rows.slice(0, n).join('\n')}\n| … | ${rows.length - n} more | | | |${link}${rowsNote}`;
  while (kept > 0 && body(kept).length > limit) kept--;
  return body(kept).slice(0, limit);
}

export interface GithubTarget {
  /** The REST API's root, e.g. https://api.github.com (GITHUB_API_URL). */
  api: string;
  token: string;
  /** owner/name */
  repo: string;
  pr: number;
}

/** A GitHub answer other than success; `status` tells a token that may not write (401, 403, 404) from the rest. */
export class GithubError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

async function call(t: GithubTarget, method: 'GET' | 'POST' | 'PATCH', url: string, body?: object): Promise<{ json: any; link: string | null }> {
  const r = await request(url, {
    method,
    headers: {
      authorization: `Bearer ${t.token}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28',
      'user-agent': 'upload-perf-suite', ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.body.text();
  if (r.statusCode < 200 || r.statusCode >= 300) {
    let why = text.slice(0, 200);
    try { why = JSON.parse(text).message ?? why; } catch { /* not JSON: the text says it */ }
    throw new GithubError(r.statusCode, `${method} ${new URL(url).pathname} answered ${r.statusCode}: ${why}`);
  }
  const link = r.headers.link;
  return { json: JSON.parse(text), link: typeof link === 'string' ? link : null };
}

/** The next page of a paged list, from its Link header. */
const nextPage = (link: string | null) => /<([^>]+)>;\s*rel="next"/.exec(link ?? '')?.[1] ?? null;

/** The sticky comment's id, or null: every page of the PR's comments is searched for the marker. */
export async function findSticky(t: GithubTarget): Promise<{ id: number; url: string } | null> {
  let url: string | null = `${t.api.replace(/\/$/, '')}/repos/${t.repo}/issues/${t.pr}/comments?per_page=100`;
  while (url) {
    const page: { json: any; link: string | null } = await call(t, 'GET', url);
    const found = (page.json as { id: number; body?: string; html_url: string }[]).find((c) => c.body?.includes(MARKER));
    if (found) return { id: found.id, url: found.html_url };
    url = nextPage(page.link);
  }
  return null;
}

/** Updates the sticky comment, or creates it when the PR has none. */
export async function upsertComment(t: GithubTarget, body: string): Promise<{ action: 'created' | 'updated'; url: string }> {
  const api = t.api.replace(/\/$/, '');
  const existing = await findSticky(t);
  if (existing) {
    const r = await call(t, 'PATCH', `${api}/repos/${t.repo}/issues/comments/${existing.id}`, { body });
    return { action: 'updated', url: r.json.html_url };
  }
  const r = await call(t, 'POST', `${api}/repos/${t.repo}/issues/${t.pr}/comments`, { body });
  return { action: 'created', url: r.json.html_url };
}
