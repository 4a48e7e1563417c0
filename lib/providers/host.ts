// The host's fingerprint, recorded in config.json under `host`: enough to tell
// whether two runs (or two shards of one) ran on alike machines. CPU model,
// cores, kernel, memory, the machine as the firmware names it (a cloud's
// instance type shows there), whether the CPU runs under a hypervisor, and the
// CI engine's own facts about the runner. ciFacts is pure; hostFingerprint reads.
//   hostFingerprint()  // { hostname, cpu_model, cores, kernel, memory_bytes, machine, hypervisor, ci }
import fs from 'node:fs';
import os from 'node:os';

export interface HostFingerprint {
  hostname: string;
  cpu_model: string;
  cores: number;
  kernel: string;
  memory_bytes: number;
  /** DMI vendor and product, e.g. "Amazon EC2 m5.large", "Microsoft Corporation Virtual Machine"; null where unreadable. */
  machine: string | null;
  /** The CPU's hypervisor flag: true inside a VM (a shared host), null where /proc/cpuinfo is unreadable. */
  hypervisor: boolean | null;
  /** The CI engine and what it says about the runner; {} outside CI. */
  ci: Record<string, string>;
}

/** Runner facts the CI engines put in the environment (no secrets among them). */
const CI_VARIABLES: Record<string, string[]> = {
  github: ['RUNNER_NAME', 'RUNNER_OS', 'RUNNER_ARCH', 'RUNNER_ENVIRONMENT', 'ImageOS', 'ImageVersion', 'GITHUB_RUN_ID', 'GITHUB_JOB'],
  circleci: ['CIRCLE_JOB', 'CIRCLE_BUILD_NUM', 'CIRCLE_NODE_INDEX', 'CIRCLE_NODE_TOTAL'],
  // NODE_NAME: the Indexed Job manifest passes spec.nodeName through the downward API.
  kubernetes: ['NODE_NAME', 'HOSTNAME', 'JOB_COMPLETION_INDEX'],
};

export function ciFacts(env: Record<string, string | undefined>): Record<string, string> {
  const engine = env.GITHUB_ACTIONS === 'true' ? 'github' : env.CIRCLECI === 'true' ? 'circleci'
    : env.KUBERNETES_SERVICE_HOST !== undefined ? 'kubernetes' : null;
  if (!engine) return {};
  const out: Record<string, string> = { engine };
  for (const k of CI_VARIABLES[engine]) if (env[k]) out[k] = env[k]!;
  return out;
}

function readTrimmed(file: string): string | null {
  try { return fs.readFileSync(file, 'utf8').trim() || null; } catch { return null; }
}

export function hostFingerprint(env: Record<string, string | undefined> = process.env): HostFingerprint {
  const dmi = ['sys_vendor', 'product_name'].map((f) => readTrimmed(`/sys/class/dmi/id/${f}`)).filter((x): x is string => x !== null);
  const cpuinfo = readTrimmed('/proc/cpuinfo');
  return {
    hostname: os.hostname(), cpu_model: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length,
    kernel: os.release(), memory_bytes: os.totalmem(),
    machine: dmi.length ? dmi.join(' ') : null,
    hypervisor: cpuinfo === null ? null : /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo),
    ci: ciFacts(env),
  };
}
