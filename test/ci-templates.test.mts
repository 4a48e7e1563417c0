// The CI templates in ci-templates/: the GitHub workflow passes actionlint
// (installed by .ci/run with go install; it runs shellcheck on the scripts
// when shellcheck is installed), and each template has the keys a sharded run
// needs: N shards with both refs, each shard's folder kept, one merge at the
// end. Every run-tests and merge-runs flag they use exists.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { HELP } from '../lib/options.ts';
import { SUITE_DIR } from '../lib/paths.ts';
import { needs } from './skips.mts';

const dir = path.join(SUITE_DIR, 'ci-templates');
const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
const load = (f: string) => YAML.parseAllDocuments(read(f)).map((d) => {
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

/** Flags of a command in a script: `--name` tokens on lines that run it (continuation lines included). */
function flagsOf(script: string, command: string): string[] {
  const joined = script.replace(/\\\n/g, ' ');
  return joined.split('\n').filter((l) => l.includes(command)).flatMap((l) => [...l.matchAll(/(?<![\w-])--([a-z][a-z-]*)/g)].map((m) => m[1]));
}

/** A shard's script runs run-tests with --shard and two --ref, and only flags run-tests has. */
function assertShardScript(script: string, where: string) {
  const run = flagsOf(script, 'run-tests');
  assert.ok(run.includes('shard') && run.filter((f) => f === 'ref').length === 2, `${where}: run-tests --shard and two --ref: ${run}`);
  for (const f of run) assert.ok(HELP.includes(`--${f} `), `${where}: run-tests has no --${f}`);
}

/** A merge script runs merge-runs with only flags it has. */
function assertMergeScript(script: string, where: string) {
  const help = fs.readFileSync(path.join(SUITE_DIR, 'merge-runs.mts'), 'utf8');
  assert.match(script, /merge-runs /, where);
  for (const f of flagsOf(script, 'merge-runs')) assert.ok(help.includes(`--${f} `), `${where}: merge-runs has no --${f}`);
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

  test('GitHub workflow: PR or dispatch, N shard jobs of --ref base --ref head, artifacts, one merge writing the job summary', () => {
    const [w] = load('github-upload-perf.yml');
    assert.ok('pull_request' in w.on && 'workflow_dispatch' in w.on);
    const shard = w.jobs.shard;
    assert.ok(shard.strategy.matrix.shard.length >= 2);
    assert.equal(shard.strategy['fail-fast'], false, 'one failed shard does not cancel the others');
    const steps = shard.steps as Record<string, any>[];
    const script = steps.map((s) => `${s.run ?? ''}`).join('\n');
    assertShardScript(script, 'shard job');
    const runStep = steps.find((s) => s.run?.includes('run-tests'))!;
    assert.equal(runStep.env.SHARD, '${{ matrix.shard }}/${{ strategy.job-total }}');
    assert.ok(steps.some((s) => s.uses?.startsWith('actions/upload-artifact@')));
    assert.equal(steps.filter((s) => s.uses?.startsWith('actions/checkout@')).length, 2, 'the server and the suite');
    const merge = w.jobs.merge;
    assert.equal(merge.needs, 'shard');
    const mergeScript = (merge.steps as Record<string, any>[]).map((s) => s.run ?? '').join('\n');
    assertMergeScript(mergeScript, 'merge job');
    assert.match(mergeScript, /merge-runs shards\/\* --out merged/);
    assert.match(mergeScript, /GITHUB_STEP_SUMMARY/);
    assert.match(mergeScript, /exit "\$code"/);
    assert.ok((merge.steps as Record<string, any>[]).some((s) => s.uses?.startsWith('actions/download-artifact@')));
  });

  test('CircleCI config: a job with parallelism running --shard auto with both refs, the workspace, a merge job after it', () => {
    const [c] = load('circleci.yml');
    assert.equal(c.version, 2.1);
    const shard = c.jobs['upload-perf-shard'];
    assert.ok(shard.parallelism >= 2);
    const script = shard.steps.map((s: any) => (typeof s === 'object' && s.run ? (s.run.command ?? s.run) : '')).join('\n');
    assert.match(script, /--shard auto/);
    assertShardScript(script, 'CircleCI shard job');
    assert.ok(shard.steps.some((s: any) => s.persist_to_workspace?.paths?.includes('shards')));
    const merge = c.jobs['upload-perf-merge'];
    assert.ok(merge.steps.some((s: any) => s.attach_workspace));
    const mergeScript = merge.steps.map((s: any) => s.run?.command ?? '').join('\n');
    assertMergeScript(mergeScript, 'CircleCI merge job');
    assert.match(mergeScript, /merge-runs \/tmp\/workspace\/shards\/\*/);
    const jobs = c.workflows['upload-perf'].jobs;
    assert.deepEqual(jobs[1]['upload-perf-merge'].requires, ['upload-perf-shard']);
  });

  test('Kubernetes: an Indexed Job with UPS_SHARD_TOTAL = completions running --shard auto onto a shared volume, and a merge Job on it', () => {
    const [job] = load('k8s-indexed-job.yaml');
    assert.equal(job.kind, 'Job');
    assert.equal(job.spec.completionMode, 'Indexed');
    const [container] = job.spec.template.spec.containers;
    const total = container.env.find((e: any) => e.name === 'UPS_SHARD_TOTAL').value;
    assert.equal(Number(total), job.spec.completions, 'UPS_SHARD_TOTAL must equal spec.completions');
    assert.equal(job.spec.parallelism, job.spec.completions);
    const script = container.args.join('\n');
    assert.match(script, /--shard auto/);
    assert.match(script, /--out "\/results\/shards\/\$JOB_COMPLETION_INDEX"/);
    assertShardScript(script, 'Indexed Job');
    const claim = job.spec.template.spec.volumes[0].persistentVolumeClaim.claimName;
    assert.equal(container.volumeMounts[0].mountPath, '/results');
    const [merge] = load('k8s-merge-job.yaml');
    assert.equal(merge.kind, 'Job');
    assert.equal(merge.spec.template.spec.volumes[0].persistentVolumeClaim.claimName, claim);
    const mergeScript = merge.spec.template.spec.containers[0].args.join('\n');
    assertMergeScript(mergeScript, 'merge Job');
    assert.match(mergeScript, /merge-runs \/results\/shards\/\*/);
  });
});
