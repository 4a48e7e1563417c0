// Why a test skips, as a tag at the start of its reason ("[needs root] ..."),
// so .ci/run can tell a skip CI expects from one it must not have: CI runs as
// root with Go, the VM packages, actionlint and UPS_SLOW_TESTS=1, so only the
// tags in CI_MAY_SKIP may skip there (.ci/skips.mts reads node's TAP output).

export const SKIP_TAGS = {
  root: 'root (memory cgroups, tmpfs mounts, network namespaces)',
  go: 'Go, to build the fixture server',
  vm: 'the VM packages (.ci/install-vm-deps) or the guest image they build',
  actionlint: 'actionlint (.ci/run installs it with go install)',
  slow: 'UPS_SLOW_TESTS=1',
  picoshare: 'a real PicoShare (PICOSHARE_BIN or PICOSHARE_SRC)',
  node18: 'a Node 18 binary (NODE18_BIN)',
  uid: 'a clone that uid 65534 can reach',
  cpus: 'two or more CPUs and taskset (util-linux)',
} as const;

export type SkipTag = keyof typeof SKIP_TAGS;

/** What CI does not provide: a skip with one of these tags is expected there; any other fails .ci/run. */
export const CI_MAY_SKIP: readonly SkipTag[] = ['picoshare', 'node18', 'uid'];

/** A skip reason with its tag, e.g. needs('go', 'go is not installed'). */
export function needs(tag: SkipTag, why: string): string {
  return `[needs ${tag}] ${why}`;
}

export interface Skip { name: string; reason: string; tag: SkipTag | null }

/** The skipped tests in node's TAP output, with the summary's own count ("# skipped N", null when absent). Pure. */
export function readSkips(tap: string): { skips: Skip[]; summaryCount: number | null } {
  const skips: Skip[] = [];
  let summaryCount: number | null = null;
  for (const line of tap.split('\n')) {
    // A test's name and reason escape their own "#" as "\#": the first " # SKIP" ends the name.
    const m = /^\s*ok \d+ - (.*?) # SKIP(?: (.*))?$/.exec(line);
    if (m) {
      const reason = (m[2] ?? '').replace(/\\#/g, '#');
      const tag = /^\[needs ([a-z0-9]+)\] /.exec(reason)?.[1];
      skips.push({ name: m[1].replace(/\\#/g, '#'), reason, tag: tag && tag in SKIP_TAGS ? (tag as SkipTag) : null });
    }
    const s = /^# skipped (\d+)$/.exec(line);
    if (s) summaryCount = (summaryCount ?? 0) + Number(s[1]);
  }
  return { skips, summaryCount };
}

/** The skips CI must not have: any tag outside CI_MAY_SKIP, or none. Pure. */
export function unexpectedSkips(skips: Skip[]): Skip[] {
  return skips.filter((s) => s.tag === null || !CI_MAY_SKIP.includes(s.tag));
}
