// Fail fast: a server that never gets ready on its first two starts, both
// times with the same answer (the same status and body, a refused connection,
// the same exit code), will not get ready on the next one either: the run
// stops instead of spending the readiness timeout on every iteration. A server
// that gets ready on either of its first two starts, or fails them differently,
// only sometimes fails: its not_ready rows are results, and the run goes on.
//
//   const ff = new FailFast()
//   ff.observe('1.1.8', 'GET / answered 500: open templates/x: no such file or directory')  // -> null
//   ff.observe('1.1.8', 'GET / answered 500: open templates/x: no such file or directory')  // -> that answer: stop
// Pure: no fs, no processes.

/** How many first starts must fail alike before the run stops. */
export const FAIL_FAST_STARTS = 2;

export class FailFast {
  /** Per server: what its first starts answered (null: it got ready). */
  private firstStarts = new Map<string, (string | null)[]>();

  /**
   * Records one start of `server` (null: it got ready; else what it did instead) and
   * returns the answer when the run must stop, else null. Later starts are not weighed.
   */
  observe(server: string, notReadyAnswer: string | null): string | null {
    const seen = this.firstStarts.get(server) ?? [];
    if (seen.length >= FAIL_FAST_STARTS) return null;
    seen.push(notReadyAnswer);
    this.firstStarts.set(server, seen);
    if (seen.length < FAIL_FAST_STARTS || seen[0] === null) return null;
    return seen.every((a) => a === seen[0]) ? seen[0] : null;
  }
}

/** What to check, from what the server answered instead of 200. */
export function whatToCheck(answer: string): string {
  if (/^GET \/ answered [45]\d\d/.test(answer)) {
    return 'the server runs but its GET / fails: does it read files relative to its working directory '
      + '(PicoShare before 1.3.8 reads ./templates and ./static)? A server built from a ref runs in its tree; '
      + 'for a prebuilt binary set server.workdir in matrix.yaml';
  }
  if (/connection refused/.test(answer)) {
    return 'nothing listened on its port: does the server take its port from PORT and bind it on every interface or 127.0.0.1? '
      + 'Its output above says what it did';
  }
  if (/^the process (exited|was killed|is gone)/.test(answer)) {
    return 'the server exits at start: its output above says why (it is started as SERVER -db DATA/store.db '
      + 'with PS_SHARED_SECRET, PORT and TMPDIR in its environment)';
  }
  return 'the server accepts connections but does not answer GET / with 200: if it is only slow to start, '
    + 'raise timeouts.readiness_seconds in matrix.yaml';
}

/** The error that stops the run: one line with the server and its answer, the evidence, then what to check. */
export function failFastMessage(server: string, answer: string, evidence: string): string {
  return [
    `fail fast: the server (${server}) never got ready on its first ${FAIL_FAST_STARTS} starts, each time: ${answer}`,
    'the run stops here; the results so far are kept. The last start\'s entry in failures.log:',
    evidence.trimEnd(),
    `what to check: ${whatToCheck(answer)}`,
  ].join('\n');
}

/** Thrown by the run loop when FailFast says stop (run-tests exits 1 with its message). */
export class ServerNeverReady extends Error {}
