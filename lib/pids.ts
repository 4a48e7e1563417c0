// Whether a process still exists: the sweeps of what a killed run left behind
// (cgroups, data folders, network namespaces, vagrant projects) name it by pid.
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // it exists, owned by someone else
  }
}
