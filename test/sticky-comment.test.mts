// sticky-comment against a stand-in of GitHub's REST API on 127.0.0.1 that
// answers the three calls it makes (list an issue's comments, in pages of 2;
// create one; update one): run twice, it creates the comment and then edits
// it, never adding a second; an over-long comparison is cut to GitHub's limit
// with the verdict kept; a fork's run, and a token refused with 403, fall back
// to the job summary and say so.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { $ } from 'zx';
import { main as compareMain } from '../compare-runs.mts';
import { SUITE_DIR } from '../lib/paths.ts';
import { commentBody, GITHUB_COMMENT_LIMIT, MARKER } from '../lib/sticky-comment.ts';
import { RUNS } from './golden.mts';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ups-sticky-'));
const TOKEN = 'test-token-123';
interface Comment { id: number; body: string; html_url: string }
const calls: string[] = [];
let comments: Comment[] = [];
let refuseWrites = false;
let nextId = 1000;

/** GitHub's three endpoints as the script uses them, with its paging (Link: rel="next") and its errors. */
const server = http.createServer((req, res) => {
  let text = '';
  req.on('data', (c) => (text += c));
  req.on('end', () => {
    const url = new URL(req.url!, 'http://127.0.0.1');
    calls.push(`${req.method} ${url.pathname}${url.search}`);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return send(401, { message: 'Bad credentials' });
    if (req.headers['x-github-api-version'] !== '2022-11-28') return send(400, { message: 'no API version' });
    let m: RegExpExecArray | null;
    if (req.method === 'GET' && (m = /^\/repos\/o\/r\/issues\/7\/comments$/.exec(url.pathname))) {
      const page = Number(url.searchParams.get('page') ?? 1);
      const items = comments.slice((page - 1) * 2, page * 2);
      const more = page * 2 < comments.length;
      const next = new URL(url);
      next.searchParams.set('page', String(page + 1));
      return send(200, items, more ? { link: `<http://127.0.0.1:${port()}${next.pathname}${next.search}>; rel="next"` } : {});
    }
    if (refuseWrites) return send(403, { message: 'Resource not accessible by integration' });
    const body = JSON.parse(text || '{}').body;
    if (typeof body !== 'string') return send(422, { message: 'body missing' });
    if (body.length > GITHUB_COMMENT_LIMIT) return send(422, { message: 'Body is too long (maximum is 65536 characters)' });
    if (req.method === 'POST' && /^\/repos\/o\/r\/issues\/7\/comments$/.test(url.pathname)) {
      const c = { id: nextId++, body, html_url: `https://github.test/o/r/pull/7#issuecomment-${nextId}` };
      comments.push(c);
      return send(201, c);
    }
    if (req.method === 'PATCH' && (m = /^\/repos\/o\/r\/issues\/comments\/(\d+)$/.exec(url.pathname))) {
      const id = Number(m[1]);
      const c = comments.find((x) => x.id === id);
      if (!c) return send(404, { message: 'Not Found' });
      c.body = body;
      return send(200, c);
    }
    return send(404, { message: 'Not Found' });
  });
});
const port = () => (server.address() as { port: number }).port;
before(() => new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok)));
after(() => { server.close(); fs.rmSync(scratch, { recursive: true, force: true }); });

let compareDir = '';
before(async () => {
  compareDir = path.join(scratch, 'compare');
  const io = { stdout: { write: () => true }, stderr: { write: () => true } };
  assert.equal(await compareMain([path.join(RUNS, 'base'), path.join(RUNS, 'cand'), '--out', compareDir], io), 1);
});

let runs = 0;
/** The real command, as the workflow runs it: exit code, stdout, stderr and the job summary it wrote. */
async function sticky(dir: string, extra: string[] = [], env: Record<string, string> = {}) {
  const summary = path.join(scratch, `summary-${++runs}.md`);
  const r = await $({ nothrow: true, quiet: true, env: { ...process.env, GITHUB_API_URL: `http://127.0.0.1:${port()}`, GITHUB_TOKEN: TOKEN, GITHUB_STEP_SUMMARY: summary, ...env } })`${path.join(SUITE_DIR, 'sticky-comment')} ${dir} --repo o/r --pr 7 --run-url https://github.test/o/r/actions/runs/5 --baseline ${'merge base 1111111 of main and 2222222'} ${extra}`;
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, summary: fs.existsSync(summary) ? fs.readFileSync(summary, 'utf8') : '' };
}

test('run twice: the first run creates the comment (after paging past others), the second edits it; never a second one', async () => {
  comments = [1, 2, 3].map((i) => ({ id: i, body: `an unrelated comment ${i}`, html_url: `u${i}` }));
  const first = await sticky(compareDir);
  assert.equal(first.exitCode, 0, first.stderr);
  assert.match(first.stdout, /comparison comment was created: https:\/\/github\.test\/o\/r\/pull\/7#issuecomment-/);
  assert.deepEqual(calls.splice(0), [
    'GET /repos/o/r/issues/7/comments?per_page=100', 'GET /repos/o/r/issues/7/comments?per_page=100&page=2', 'POST /repos/o/r/issues/7/comments',
  ]);
  assert.equal(comments.length, 4);
  const body = comments[3].body;
  assert.ok(body.startsWith(MARKER));
  assert.match(body, /^\*\*Verdict: REGRESSED: 2 case\(s\) slower, 1 newly failed, 0 failing more often\*\*$/m);
  assert.match(body, /^Baseline: merge base 1111111 of main and 2222222\.$/m);
  assert.match(body, /^\| 10MiB \| 256MB \| -23\.1% \[-24\.2%, -21\.7%\] \| — \| slower \|$/m);
  assert.match(body, /^\| 100MiB \| 512MB \| -20\.8% \[-21\.7%, -20\.0%\] \| regressed: 1\/6 vs 0\/6 \| slower \|$/m);
  assert.match(body, /\[the run's artifacts\]\(https:\/\/github\.test\/o\/r\/actions\/runs\/5\)/);
  assert.match(body, /<details><summary>The full comparison<\/summary>[\s\S]*## Throughput \(MiB\/s\)[\s\S]*<\/details>$/);
  assert.match(first.summary, /^> The pull request's comparison comment was created/);

  // The second run finds it on page 2 and edits it in place.
  fs.appendFileSync(path.join(compareDir, 'compare.md'), '\nsecond run\n');
  const second = await sticky(compareDir);
  assert.equal(second.exitCode, 0, second.stderr);
  assert.match(second.stdout, /comparison comment was updated/);
  assert.deepEqual(calls.splice(0), [
    'GET /repos/o/r/issues/7/comments?per_page=100', 'GET /repos/o/r/issues/7/comments?per_page=100&page=2', `PATCH /repos/o/r/issues/comments/${comments[3].id}`,
  ]);
  assert.equal(comments.length, 4, 'no second comment');
  assert.equal(comments.filter((c) => c.body.includes(MARKER)).length, 1);
  assert.match(comments[3].body, /second run/);
});

test('an over-long comparison is cut to the limit, the verdict, summary and link kept', async () => {
  const long = path.join(scratch, 'long');
  fs.cpSync(compareDir, long, { recursive: true });
  const md = fs.readFileSync(path.join(long, 'compare.md'), 'utf8');
  fs.writeFileSync(path.join(long, 'compare.md'), md + '\n' + Array.from({ length: 3000 }, (_, i) => `| warning row ${i} | ${'x'.repeat(40)} |`).join('\n'));
  const json = JSON.parse(fs.readFileSync(path.join(long, 'compare.json'), 'utf8'));
  fs.writeFileSync(path.join(long, 'compare.json'), JSON.stringify(json));
  comments = [];
  const r = await sticky(long);
  assert.equal(r.exitCode, 0, r.stderr);
  calls.splice(0);
  const body = comments[0].body;
  assert.ok(md.length + 3000 * 50 > GITHUB_COMMENT_LIMIT && body.length <= GITHUB_COMMENT_LIMIT, `${body.length}`);
  assert.match(body, /\*\*Verdict: REGRESSED/);
  assert.match(body, /\| 10MiB \| 256MB \| -23\.1%/);
  assert.match(body, /_The full comparison was cut to fit GitHub's 65536-character comment limit; the whole comparison is in the artifacts\._$/);
  assert.match(body, /\[the run's artifacts\]/);

  // So many changed cases that even the table must be cut: its tail goes, the verdict stays.
  json.cases = Array.from({ length: 3000 }, (_, i) => ({ ...json.cases[1], file_size: `${i}MiB` }));
  const pure = commentBody({ compareMd: md, compareJson: json, runUrl: 'https://x/runs/5', baseline: null });
  assert.ok(pure.length <= GITHUB_COMMENT_LIMIT, `${pure.length}`);
  assert.match(pure, /^\*\*Verdict: REGRESSED/m);
  assert.match(pure, /\| … \| \d+ more \| \| \| \|\n/);
  assert.match(pure, /\[the run's artifacts\]\(https:\/\/x\/runs\/5\)/);
  assert.match(pure, /_The table of changed cases was cut/);
});

test('a fork\'s run, or a token refused (403), writes the job summary instead and says so; exit 0', async () => {
  comments = [];
  const fork = await sticky(compareDir, ['--fork']);
  assert.equal(fork.exitCode, 0, fork.stderr);
  assert.deepEqual(calls.splice(0), [], 'a fork\'s run does not call the API');
  assert.match(fork.summary, /^> Not posted as a pull-request comment: this pull request comes from a fork, whose token cannot write comments/);
  assert.match(fork.summary, /\*\*Verdict: REGRESSED/);
  refuseWrites = true;
  const refused = await sticky(compareDir);
  refuseWrites = false;
  assert.equal(refused.exitCode, 0, refused.stderr);
  assert.deepEqual(calls.splice(0), ['GET /repos/o/r/issues/7/comments?per_page=100', 'POST /repos/o/r/issues/7/comments']);
  assert.match(refused.summary, /^> Not posted as a pull-request comment: the token may not write comments \(POST \/repos\/o\/r\/issues\/7\/comments answered 403: Resource not accessible by integration\)/);
  assert.equal(comments.length, 0);
  const bad = await sticky(compareDir, [], { GITHUB_TOKEN: 'wrong' });
  calls.splice(0);
  assert.equal(bad.exitCode, 0);
  assert.match(bad.stdout, /answered 401: Bad credentials/);
  const noPr = await $({ nothrow: true, quiet: true })`${path.join(SUITE_DIR, 'sticky-comment')} ${compareDir} --repo o/r`;
  assert.equal(noPr.exitCode, 2);
  assert.match(noPr.stderr, /^Error: --pr "": expected the pull request's number$/m);
});
