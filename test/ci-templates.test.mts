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
import { parseOptions } from '../lib/options.ts';
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

/**
 * The argument words of every `command` run in a shell script: continuation lines joined, comments
 * dropped, commands split at | ; & and newlines outside quotes and $(...). Quotes are kept in the words.
 */
function commandsOf(script: string, command: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let quote = '';
  let depth = 0; // inside $( ... )
  const endWord = () => { if (word) words.push(word); word = ''; };
  const endCommand = () => { endWord(); if (words.length) commands.push(words); words = []; };
  const text = script.replace(/\\\n/g, ' ');
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = '';
      word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word += c;
    } else if (c === '$' && text[i + 1] === '(') {
      depth++;
      word += c;
    } else if (depth > 0) {
      if (c === ')') depth--;
      word += c;
    } else if (c === '#' && !word) {
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
    } else if (c === ' ' || c === '\t') {
      endWord();
    } else if (c === '\n' || c === ';' || c === '|' || c === '&') {
      endCommand();
    } else {
      word += c;
    }
  }
  endCommand();
  // The command word comes after any `sudo`, `env`, their options and VAR=value words.
  return commands.flatMap((ws) => {
    const at = ws.findIndex((w) => !['sudo', 'env'].includes(w) && !w.startsWith('-') && !w.includes('='));
    return at >= 0 && (ws[at] === command || ws[at].endsWith(`/${command}`)) ? [ws.slice(at + 1)] : [];
  });
}

/** The --flag names among a command's words. */
const flagsIn = (args: string[]) => args.filter((w) => /^--[a-z]/.test(w)).map((w) => w.slice(2).split('=')[0]);

/** Whether run-tests' own parser knows --flag (any other complaint, about its value, means it does). */
function runTestsKnows(flag: string): boolean {
  try {
    parseOptions([`--${flag}=x`]);
  } catch (e) {
    return !/Unknown option/.test((e as Error).message);
  }
  return true;
}

/** Whether ./merge-runs knows --flag: given it alone, it complains of anything but an unknown option. */
function mergeRunsKnows(flag: string): boolean {
  const r = spawnSync(path.join(SUITE_DIR, 'merge-runs'), [`--${flag}=x`], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  return !/Unknown option/.test(r.stderr);
}

/** A shard's script runs run-tests with --shard and two --ref, and only flags run-tests has; returns its arguments. */
function assertShardScript(script: string, where: string): string[] {
  const runs = commandsOf(script, 'run-tests');
  assert.equal(runs.length, 1, `${where}: one run-tests command: ${JSON.stringify(runs)}`);
  const flags = flagsIn(runs[0]);
  assert.ok(flags.includes('shard') && flags.filter((f) => f === 'ref').length === 2, `${where}: run-tests --shard and two --ref: ${flags}`);
  for (const f of flags) assert.ok(runTestsKnows(f), `${where}: run-tests has no --${f}`);
  return runs[0];
}

/** The value after `flag` in a command's words. */
const valueOf = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

/** A merge script runs merge-runs with only flags it has; returns its arguments. */
function assertMergeScript(script: string, where: string): string[] {
  const merges = commandsOf(script, 'merge-runs');
  assert.equal(merges.length, 1, `${where}: one merge-runs command: ${JSON.stringify(merges)}`);
  for (const f of flagsIn(merges[0])) assert.ok(mergeRunsKnows(f), `${where}: merge-runs has no --${f}`);
  return merges[0];
}

test('the flag checks can fail: an unknown flag, a commented-out command, a flag of another command', () => {
  assert.equal(runTestsKnows('no-such-flag'), false);
  assert.equal(mergeRunsKnows('no-such-flag'), false);
  assert.equal(runTestsKnows('shard'), true);
  assert.equal(mergeRunsKnows('allow-missing'), true);
  const script = '  # ./run-tests --shard 1/2 --ref a --ref b\necho run-tests --ref x\nsudo -E env "PATH=$PATH" ./suite/run-tests --out "a b" \\\n  --ref "$A" | tee out; ls --all\nx=$(merge-runs --nope | wc)';
  assert.deepEqual(commandsOf(script, 'run-tests'), [['--out', '"a b"', '--ref', '"$A"']], 'only the command that runs it');
  assert.deepEqual(commandsOf(script, 'merge-runs'), []);
  assert.throws(() => assertShardScript(script, 'x'), /run-tests --shard and two --ref: out,ref/);
});

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
    const run = assertShardScript(script, 'shard job');
    assert.deepEqual([valueOf(run, '--shard'), run.filter((_, i) => run[i - 1] === '--ref')], ['"$SHARD"', ['"$BASE_REF"', '"$HEAD_REF"']]);
    const runStep = steps.find((s) => s.run?.includes('run-tests'))!;
    assert.equal(runStep.env.SHARD, '${{ matrix.shard }}/${{ strategy.job-total }}');
    assert.ok(steps.some((s) => s.uses?.startsWith('actions/upload-artifact@')));
    assert.equal(steps.filter((s) => s.uses?.startsWith('actions/checkout@')).length, 2, 'the server and the suite');
    const merge = w.jobs.merge;
    assert.equal(merge.needs, 'shard');
    const mergeScript = (merge.steps as Record<string, any>[]).map((s) => s.run ?? '').join('\n');
    assert.deepEqual(assertMergeScript(mergeScript, 'merge job'), ['shards/*', '--out', 'merged']);
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
    assert.equal(valueOf(assertShardScript(script, 'CircleCI shard job'), '--shard'), 'auto');
    assert.ok(shard.steps.some((s: any) => s.persist_to_workspace?.paths?.includes('shards')));
    const merge = c.jobs['upload-perf-merge'];
    assert.ok(merge.steps.some((s: any) => s.attach_workspace));
    const mergeScript = merge.steps.map((s: any) => s.run?.command ?? '').join('\n');
    assert.equal(assertMergeScript(mergeScript, 'CircleCI merge job')[0], '/tmp/workspace/shards/*');
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
    const run = assertShardScript(script, 'Indexed Job');
    assert.deepEqual([valueOf(run, '--shard'), valueOf(run, '--out')], ['auto', '"/results/shards/$JOB_COMPLETION_INDEX"']);
    const claim = job.spec.template.spec.volumes[0].persistentVolumeClaim.claimName;
    assert.equal(container.volumeMounts[0].mountPath, '/results');
    const [merge] = load('k8s-merge-job.yaml');
    assert.equal(merge.kind, 'Job');
    assert.equal(merge.spec.template.spec.volumes[0].persistentVolumeClaim.claimName, claim);
    const mergeScript = merge.spec.template.spec.containers[0].args.join('\n');
    assert.equal(assertMergeScript(mergeScript, 'merge Job')[0], '/results/shards/*');
  });
});
