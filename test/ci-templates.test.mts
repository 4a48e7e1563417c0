// The CI templates in ci-templates/, read as each CI reads them: parsed as
// YAML, their scripts taken from the keys the CI runs, and the suite's commands
// in them expanded by bash with the environment that CI sets, then given to the
// suite's own parsers. So: every flag exists, and each of the N shard jobs gets
// a different shard k/N, 1..N. The GitHub workflow passes actionlint (installed
// by .ci/run with go install; it runs shellcheck on the scripts when installed),
// takes the merge base as baseline and comments from one job that alone may
// write; the GitLab template has the keys GitLab requires.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { main as mergeRuns } from '../merge-runs.mts';
import { main as stickyComment } from '../sticky-comment.mts';
import { parseOptions, type Options } from '../lib/options.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { needs } from './skips.mts';

const dir = path.join(SUITE_DIR, 'ci-templates');
const load = (f: string) => YAML.parseAllDocuments(fs.readFileSync(path.join(dir, f), 'utf8')).map((d) => {
  assert.deepEqual(d.errors, [], f);
  return d.toJS();
});

/** actionlint on PATH, or where `go install` put it; null when neither has it. */
function actionlint(): string | null {
  const gopath = spawnSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).stdout?.trim() || path.join(os.homedir(), 'go');
  for (const p of [...(process.env.PATH ?? '').split(':'), path.join(gopath, 'bin')]) {
    const f = path.join(p, 'actionlint');
    if (p && fs.existsSync(f)) return f;
  }
  return null;
}

/**
 * The argv of each call of `command` in a shell script, as bash expands it with `env`: the call runs from the
 * command's name to the end of its (continued) line or the first |, ; or &&. Globs that match nothing stay as written.
 * Variables the script itself sets before the call (`provider=local`) come in `env` too.
 */
function argvOf(script: string, command: string, env: Record<string, string>): string[][] {
  const lines = script.replace(/\\\n/g, ' ').split('\n');
  const calls = lines.flatMap((l) => {
    const m = new RegExp(`(?:^|[\\s/])${command}\\s`).exec(l);
    return m ? [l.slice(m.index + m[0].length).split(/\|\||\||;|&&/)[0]] : [];
  });
  return calls.map((args) => {
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `printf '%s\\0' ${args}`], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', cwd: os.tmpdir() });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\0').slice(0, -1);
  });
}

/** run-tests' own option parser on an argv, with the CI's variables as its environment (--shard auto reads them). */
function runTestsOptions(argv: string[], env: Record<string, string>): Options {
  const saved = { ...process.env };
  for (const k of ['CIRCLE_NODE_INDEX', 'CIRCLE_NODE_TOTAL', 'CI_NODE_INDEX', 'CI_NODE_TOTAL', 'JOB_COMPLETION_INDEX', 'UPS_SHARD_TOTAL']) delete process.env[k];
  Object.assign(process.env, env);
  try {
    const o = parseOptions(argv);
    assert.notEqual(o, 'help');
    return o as Options;
  } finally {
    process.env = saved;
  }
}

/** Each job's env gives run-tests a different shard: 1..N of N, both refs, and only flags run-tests has. */
function assertShards(script: string, envs: Record<string, string>[], n: number, where: string): Options[] {
  const opts = envs.map((env) => {
    const calls = argvOf(script, 'run-tests', env);
    assert.equal(calls.length, 1, `${where}: one run-tests call`);
    return runTestsOptions(calls[0], env);
  });
  assert.deepEqual(opts.map((o) => [o.shard?.index, o.shard?.total]), Array.from({ length: n }, (_, i) => [i + 1, n]), where);
  for (const o of opts) assert.equal(o.refs.length, 2, `${where}: both refs`);
  return opts;
}

/** merge-runs' own parser takes the template's argv: it gets past the options to the shard folders (none exist here). */
async function assertMergeArgv(argv: string[], where: string): Promise<void> {
  let err = '';
  const code = await mergeRuns(argv, { stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) } });
  assert.equal(code, 2, where);
  assert.doesNotMatch(err, /Unknown option|unexpected argument|see --help/, `${where}: ${err}`);
}

describe('CI templates', { timeout: 120_000 }, () => {
  test('GitHub workflow: passes actionlint', (t) => {
    const bin = actionlint();
    if (!bin) return t.skip(needs('actionlint', 'actionlint is not installed (.ci/run installs it: go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12)'));
    const r = spawnSync(bin, ['-color=false', path.join(dir, 'github-upload-perf.yml')], { encoding: 'utf8' });
    t.diagnostic(`${bin} ${spawnSync(bin, ['-version'], { encoding: 'utf8' }).stdout.split('\n')[0]}; shellcheck ${spawnSync('shellcheck', ['--version']).status === 0 ? 'used' : 'not installed'}`);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, '');
  });

  test('GitHub workflow: the merge base as baseline, a shard k/N per matrix job, one merge job that alone may comment', async () => {
    const [w] = load('github-upload-perf.yml');
    assert.ok('pull_request' in w.on && 'workflow_dispatch' in w.on);
    assert.deepEqual(w.permissions, { contents: 'read' }, 'read-only at the top');
    // plan: git merge-base of the PR's base and head, as an output the other jobs use.
    const refs = w.jobs.plan.steps.find((s: any) => s.id === 'refs');
    assert.equal(refs.env.BASE, '${{ github.event.pull_request.base.sha || inputs.base }}');
    assert.equal(refs.env.HEAD, '${{ github.event.pull_request.head.sha || inputs.head || github.sha }}');
    assert.match(refs.run, /^merge_base=\$\(git merge-base "\$base" "\$head"\)$/m);
    assert.match(refs.run, /echo "base=\$merge_base"/);
    assert.equal(w.jobs.plan.outputs.base, '${{ steps.refs.outputs.base }}');
    assert.equal(w.jobs.plan.steps[0].with['fetch-depth'], 0);

    const shard = w.jobs.shard;
    assert.equal(shard.needs, 'plan');
    assert.equal(shard.strategy['fail-fast'], false, 'one failed shard does not cancel the others');
    const runStep = shard.steps.find((s: any) => s.run?.includes('run-tests'));
    assert.equal(runStep.env.SHARD, '${{ matrix.shard }}/${{ strategy.job-total }}');
    assert.equal(runStep.env.BASE_REF, '${{ needs.plan.outputs.base }}');
    const n = shard.strategy.matrix.shard.length;
    assert.ok(n >= 2);
    // GitHub sets SHARD per matrix job from the expression; the step's other env as the runner has it.
    const envs = shard.strategy.matrix.shard.map((k: number) => ({ SHARD: `${k}/${n}`, PROVIDER: 'local', BASE_REF: 'aaaa', HEAD_REF: 'bbbb', RUNNER_TEMP: '/tmp/rt' }));
    const opts = assertShards(runStep.run, envs, n, 'GitHub shard job');
    assert.deepEqual(opts[0].refs, ['aaaa', 'bbbb'], 'the merge base first: the baseline');
    assert.ok(shard.steps.some((s: any) => s.uses?.startsWith('actions/upload-artifact@')));
    assert.equal(shard.steps.filter((s: any) => s.uses?.startsWith('actions/checkout@')).length, 2, 'the server and the suite');

    const merge = w.jobs.merge;
    assert.deepEqual(merge.needs, ['plan', 'shard']);
    assert.deepEqual(merge.permissions, { contents: 'read', 'pull-requests': 'write' });
    const writers = Object.entries(w.jobs).filter(([, j]: [string, any]) => JSON.stringify(j.permissions ?? {}).includes('write')).map(([name]) => name);
    assert.deepEqual(writers, ['merge'], 'only the merge job may write');
    const mergeStep = merge.steps.find((s: any) => s.id === 'merge');
    const [mergeArgv] = argvOf(mergeStep.run, 'merge-runs', {});
    assert.deepEqual(mergeArgv, ['shards/*', '--out', 'merged', '--junit', 'merged/junit.xml']);
    await assertMergeArgv(mergeArgv, 'GitHub merge job');
    const comment = merge.steps.find((s: any) => s.run?.includes('sticky-comment'));
    assert.equal(comment.if, "${{ github.event_name == 'pull_request' && steps.merge.outputs.code != '' }}");
    assert.equal(comment.env.FORK, '${{ github.event.pull_request.head.repo.full_name != github.repository }}');
    assert.equal(comment.env.GITHUB_TOKEN, '${{ github.token }}');
    for (const fork of ['true', 'false']) {
      // The whole step, as GitHub runs it (bash -e), with the command itself replaced by one that prints its argv.
      const env = { FORK: fork, GITHUB_REPOSITORY: 'o/r', PR: '7', RUN_URL: 'https://x/runs/1', BASELINE: 'merge base a of main (b) and the head c' };
      const probe = `probe() { printf '%s\\0' "$@"; }\n${comment.run.replace('suite/sticky-comment', 'probe')}`;
      const r = spawnSync('bash', ['--norc', '--noprofile', '-e', '-c', probe], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const argv = r.stdout.split('\0').slice(0, -1);
      assert.deepEqual(argv, ['merged/compare', '--repo', 'o/r', '--pr', '7', '--run-url', 'https://x/runs/1', '--baseline', env.BASELINE, ...(fork === 'true' ? ['--fork'] : [])]);
      let err = '';
      // sticky-comment's own parser takes it: it gets past the options to the (absent) comparison folder.
      assert.equal(await stickyComment(argv, { stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) } }, {}), 2);
      assert.match(err, /cannot read merged\/compare\/compare\.json/);
    }
    const verdict = merge.steps.at(-1);
    assert.equal(verdict.run, 'exit "$CODE"', 'the check fails on the comparison\'s exit code, after the comment');
    assert.ok(merge.steps.some((s: any) => s.uses?.startsWith('actions/download-artifact@')));
  });

  test('GitLab: the keys GitLab requires, parallel: N jobs each a different shard from CI_NODE_INDEX/CI_NODE_TOTAL, one merge publishing JUnit', async () => {
    const [g] = load('gitlab-ci.yml');
    const GLOBAL = ['stages', 'variables', 'default', 'workflow', 'include', 'image', 'services', 'cache', 'before_script', 'after_script'];
    const jobs = Object.entries(g).filter(([k]) => !GLOBAL.includes(k) && !k.startsWith('.')) as [string, any][];
    assert.deepEqual(jobs.map(([k]) => k), ['upload-perf-shard', 'upload-perf-merge']);
    for (const [name, job] of jobs) {
      const full = { ...(job.extends ? g[job.extends] : {}), ...job };
      assert.ok(Array.isArray(full.script) && full.script.length > 0, `${name}: script is required`);
      assert.ok(g.stages.includes(full.stage), `${name}: stage ${full.stage} is one of stages`);
      assert.ok(full.image, `${name}: an image`);
      for (const n of full.needs ?? []) assert.ok(g[n], `${name}: needs ${n}, a job`);
    }
    const shard = g['upload-perf-shard'];
    const n = shard.parallel;
    assert.ok(Number.isInteger(n) && n >= 2 && n <= 200, 'parallel: 2..200');
    // GitLab sets CI_NODE_INDEX 1..N and CI_NODE_TOTAL N on the N jobs; the merge base is CI_MERGE_REQUEST_DIFF_BASE_SHA.
    const envs = Array.from({ length: n }, (_, i) => ({ CI_NODE_INDEX: String(i + 1), CI_NODE_TOTAL: String(n), CI_MERGE_REQUEST_DIFF_BASE_SHA: 'base0', CI_COMMIT_SHA: 'head1', provider: 'local' }));
    const opts = assertShards(shard.script.join('\n'), envs, n, 'GitLab shard job');
    assert.deepEqual(opts[0].refs, ['base0', 'head1']);
    assert.deepEqual(shard.artifacts.paths, ['shards/']);
    const merge = g['upload-perf-merge'];
    assert.deepEqual(merge.needs, ['upload-perf-shard']);
    const [argv] = argvOf(merge.script.join('\n'), 'merge-runs', {});
    await assertMergeArgv(argv, 'GitLab merge job');
    assert.equal(argv[argv.indexOf('--junit') + 1], merge.artifacts.reports.junit, 'the JUnit file merge-runs writes is the report GitLab reads');
    assert.equal(argv[argv.indexOf('--out') + 1] + '/', merge.artifacts.paths[0]);
    assert.equal(merge.artifacts.when, 'always');
  });

  test('CircleCI: parallelism jobs each a different shard from CIRCLE_NODE_INDEX/TOTAL, a merge storing artifacts and JUnit test results', async () => {
    const [c] = load('circleci.yml');
    assert.equal(c.version, 2.1);
    const shard = c.jobs['upload-perf-shard'];
    const n = shard.parallelism;
    assert.ok(n >= 2);
    const script = shard.steps.map((s: any) => s.run?.command ?? '').join('\n');
    const envs = Array.from({ length: n }, (_, i) => ({ CIRCLE_NODE_INDEX: String(i), CIRCLE_NODE_TOTAL: String(n), CIRCLE_SHA1: 'head1', provider: 'local' }));
    assertShards(script.replace(/<< pipeline\.parameters\.base-ref >>/g, 'main'), envs, n, 'CircleCI shard job');
    assert.ok(shard.steps.some((s: any) => s.persist_to_workspace?.paths?.includes('shards')));
    const merge = c.jobs['upload-perf-merge'];
    assert.ok(merge.steps.some((s: any) => s.attach_workspace));
    const [argv] = argvOf(merge.steps.map((s: any) => s.run?.command ?? '').join('\n'), 'merge-runs', {});
    await assertMergeArgv(argv, 'CircleCI merge job');
    const results = merge.steps.find((s: any) => s.store_test_results).store_test_results.path;
    assert.ok(argv[argv.indexOf('--junit') + 1].startsWith(`${results}/`), 'the JUnit file lies under store_test_results');
    const names = merge.steps.map((s: any) => Object.keys(s)[0] === 'run' ? s.run.name : Object.keys(s)[0]);
    assert.ok(names.indexOf('store_test_results') < names.indexOf('Verdict (fails on the comparison\'s exit 1)'), 'results stored before the verdict fails the job');
    const jobs = c.workflows['upload-perf'].jobs;
    assert.deepEqual(jobs[1]['upload-perf-merge'].requires, ['upload-perf-shard']);
  });

  test('Kubernetes: an Indexed Job whose pods each get a different shard from JOB_COMPLETION_INDEX and UPS_SHARD_TOTAL, and a merge Job', async () => {
    const [job] = load('k8s-indexed-job.yaml');
    assert.equal(job.kind, 'Job');
    assert.equal(job.spec.completionMode, 'Indexed');
    const [container] = job.spec.template.spec.containers;
    const env = Object.fromEntries(container.env.filter((e: any) => 'value' in e).map((e: any) => [e.name, e.value]));
    const n = job.spec.completions;
    assert.equal(Number(env.UPS_SHARD_TOTAL), n, 'UPS_SHARD_TOTAL must equal spec.completions');
    assert.equal(job.spec.parallelism, n);
    const envs = Array.from({ length: n }, (_, i) => ({ ...env, JOB_COMPLETION_INDEX: String(i) }));
    assertShards(container.args.join('\n'), envs, n, 'Indexed Job');
    const claim = job.spec.template.spec.volumes[0].persistentVolumeClaim.claimName;
    assert.equal(container.volumeMounts[0].mountPath, '/results');
    const [merge] = load('k8s-merge-job.yaml');
    assert.equal(merge.kind, 'Job');
    assert.equal(merge.spec.template.spec.volumes[0].persistentVolumeClaim.claimName, claim);
    const [argv] = argvOf(merge.spec.template.spec.containers[0].args.join('\n'), 'merge-runs', {});
    await assertMergeArgv(argv, 'merge Job');
  });
});
