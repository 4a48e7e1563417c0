// The one owner of SIGINT and SIGTERM for a run. Providers and builds never
// install handlers of their own: they get `signal` (an AbortSignal) and their
// close(), which the run awaits.
//
// Two phases. While servers are built and test files made, a signal is held:
// the step under way finishes its own cleanup (a ref's worktree is removed),
// then the run returns 130/143 before any results folder exists. Once the run
// has its folders, a signal aborts `signal` (the upload stops, providers tear
// down) and is recorded as the stop reason; a second one does not cut the
// cleanup short, it says what is still being waited for.
//
//   const interrupts = new Interrupts(say).install()
//   ...prepare...; if (interrupts.received) return interrupts.exitCode()
//   interrupts.startRun(onStop, waitingFor)   // a signal held until now is handled here
//   ...; interrupts.uninstall()

export class Interrupts {
  private readonly controller = new AbortController();
  private first: NodeJS.Signals | null = null;
  private running = false;
  private onStop: (sig: NodeJS.Signals) => void = () => {};
  private waitingFor: () => string[] = () => [];

  constructor(private readonly say: (line: string) => void) {}

  /** Aborted when the run is interrupted (never while preparing: that waits for the step under way). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The first signal received, or null. */
  get received(): NodeJS.Signals | null {
    return this.first;
  }

  /** 130 for SIGINT, 143 for SIGTERM; null when no signal came. */
  exitCode(): number | null {
    return this.first === null ? null : this.first === 'SIGINT' ? 130 : 143;
  }

  install(): this {
    process.on('SIGINT', this.handle);
    process.on('SIGTERM', this.handle);
    return this;
  }

  uninstall(): void {
    process.off('SIGINT', this.handle);
    process.off('SIGTERM', this.handle);
  }

  /** The run proper begins: from now on a signal stops it; one that came while preparing is handled at once. */
  startRun(onStop: (sig: NodeJS.Signals) => void, waitingFor: () => string[]): void {
    this.onStop = onStop;
    this.waitingFor = waitingFor;
    this.running = true;
    if (this.first) this.stop(this.first);
  }

  private readonly handle = (sig: NodeJS.Signals): void => {
    if (!this.running) {
      this.first ??= sig;
      this.say(`${sig}: stopping once the step under way has cleaned up (nothing measured yet)`);
      return;
    }
    if (this.controller.signal.aborted) {
      const waiting = this.waitingFor();
      this.say(`${sig} again: still cleaning up (the cleanup is not abandoned): waiting for ${waiting.length ? waiting.join('; ') : 'the results files to be written'}`);
      return;
    }
    this.first = sig;
    this.stop(sig);
  };

  private stop(sig: NodeJS.Signals): void {
    this.onStop(sig);
    this.say(`${sig}: stopping the current upload and tearing down`);
    this.controller.abort();
  }
}
