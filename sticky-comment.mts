// sticky-comment: posts a comparison as the pull request's one sticky comment
// (found by a hidden marker: a re-run edits it, never adds another), or, when
// the token cannot write (a PR from a fork), writes it to the job summary and
// says so. The GitHub workflow template's merge job runs it.
//
//   GITHUB_TOKEN=... ./sticky-comment merged/compare --repo owner/name --pr 12 --run-url URL --baseline "merge base ..."
//
// Exit 0 posted, updated, or fell back to the job summary; 1 GitHub failed
// otherwise; 2 bad input.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { InputError, PROCESS_IO, reportErrors, runIfMain, type Io } from './lib/errors.ts';
import { commentBody, GithubError, upsertComment } from './lib/sticky-comment.ts';

const HELP = `Usage: sticky-comment COMPARE_DIR --repo OWNER/NAME --pr N [options]

Posts compare-runs' comparison (COMPARE_DIR holds compare.md and compare.json)
as the pull request's one sticky comment: the verdict, the summary, the table
of changed cases, a link to the artifacts and the full comparison folded,
cut to GitHub's 65536-character limit with the verdict kept. A comment from an
earlier run (found by its hidden marker) is edited instead of adding another.
When the token cannot write comments (a pull request from a fork: GitHub
gives those runs a read-only token), the comment goes to the job summary
($GITHUB_STEP_SUMMARY), saying why. The job summary always gets a copy.

Options:
  --repo OWNER/NAME   the repository (GITHUB_REPOSITORY)
  --pr N              the pull request's number
  --run-url URL       the workflow run whose artifacts hold the full results
  --baseline TEXT     how the baseline was chosen, e.g. "merge base abc123 of main and def456"
  --fork              the pull request comes from a fork: do not try to comment, write the summary
  -h, --help          this text

Environment: GITHUB_TOKEN (needs pull-requests: write), GITHUB_API_URL (default
https://api.github.com), GITHUB_STEP_SUMMARY (the job summary file, when set).
`;

export function main(argv: string[], io: Io = PROCESS_IO, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return reportErrors(io, () => run(argv, io, env));
}

async function run(argv: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        repo: { type: 'string' }, pr: { type: 'string' }, 'run-url': { type: 'string' }, baseline: { type: 'string' },
        fork: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new InputError(`${(e as Error).message.replace(/\s*\n+\s*/g, ' ')} (see --help)`);
  }
  const { values: v, positionals } = parsed;
  if (v.help) return io.stdout.write(HELP), 0;
  if (positionals.length !== 1) throw new InputError(`expected one comparison folder (compare.md, compare.json), got ${positionals.length} (see --help)`);
  const repo = v.repo ?? env.GITHUB_REPOSITORY ?? '';
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) throw new InputError(`--repo ${JSON.stringify(repo)}: expected OWNER/NAME`);
  if (!/^[1-9]\d*$/.test(v.pr ?? '')) throw new InputError(`--pr ${JSON.stringify(v.pr ?? '')}: expected the pull request's number`);
  const read = (name: string) => {
    const f = path.join(positionals[0], name);
    try { return fs.readFileSync(f, 'utf8'); } catch (e) { throw new InputError(`cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
  };
  let compareJson;
  try { compareJson = JSON.parse(read('compare.json')); } catch (e) {
    throw e instanceof InputError ? e : new InputError(`${path.join(positionals[0], 'compare.json')}: not JSON (${(e as Error).message})`);
  }
  const body = commentBody({ compareMd: read('compare.md'), compareJson, runUrl: v['run-url'] ?? null, baseline: v.baseline ?? null });

  const summary = (note: string) => {
    io.stdout.write(`${note}\n`);
    if (env.GITHUB_STEP_SUMMARY) fs.appendFileSync(env.GITHUB_STEP_SUMMARY, `> ${note}\n\n${body}\n`);
  };
  const token = env.GITHUB_TOKEN ?? '';
  if (v.fork) return summary('Not posted as a pull-request comment: this pull request comes from a fork, whose token cannot write comments. The comparison is here instead.'), 0;
  if (token === '') return summary('Not posted as a pull-request comment: no GITHUB_TOKEN. The comparison is here instead.'), 0;
  try {
    const r = await upsertComment({ api: env.GITHUB_API_URL || 'https://api.github.com', token, repo, pr: Number(v.pr) }, body);
    summary(`The pull request's comparison comment was ${r.action}: ${r.url}`);
    return 0;
  } catch (e) {
    // A read-only token (a fork's, or a job without pull-requests: write): the summary instead, saying so.
    if (e instanceof GithubError && [401, 403, 404].includes(e.status)) {
      return summary(`Not posted as a pull-request comment: the token may not write comments (${e.message}). The comparison is here instead.`), 0;
    }
    throw e;
  }
}

runIfMain(import.meta.url, (argv) => main(argv));
