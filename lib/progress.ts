// Progress on stderr: a live line on a terminal (bytes, MiB/s, ETA, case k of n),
// plain periodic lines when stderr is not a terminal (CI logs, files).
import { MiB } from './units.ts';

/** The one way a message reaches the user: a line on stderr, through Progress (providers, image builds and steps all take one). */
export type Say = (line: string) => void;

export interface UploadProgress {
  update(sentBytes: number): void;
  done(): void;
  /** The verification download after the upload: bytes received of `totalBytes`. */
  verify(receivedBytes: number, totalBytes: number): void;
}

export class Progress {
  constructor(
    private out: { write(s: string): unknown; isTTY?: boolean } = process.stderr,
    private plainEveryMs = 5000,
  ) {}

  private get tty(): boolean {
    return Boolean((this.out as { isTTY?: boolean }).isTTY) && !process.env.CI;
  }

  /** A message on its own line (clears a live line first). */
  line(text: string): void {
    this.out.write(this.tty ? `\r\x1b[K${text}\n` : `${text}\n`);
  }

  /** Tracks one upload of `totalBytes`; `label` names the case, e.g. "[3/8] 256MB 100MiB #2". */
  upload(label: string, totalBytes: number): UploadProgress {
    const start = Date.now();
    let last = 0;
    let sentAllAt: number | null = null;
    let waiting: NodeJS.Timeout | null = null;
    const render = (sent: number) => {
      const { done, rateEta } = pace(sent, totalBytes, start);
      // Every byte sent: the server is processing, and "ETA 0 s" would stand there for as long as it takes.
      const rest = sentAllAt !== null ? `all sent, waiting for the response (${((Date.now() - sentAllAt) / 1000).toFixed(0)} s)` : rateEta;
      return `${label}  ${done}  ${rest}`;
    };
    const update = (sent: number, force = false) => {
      const now = Date.now();
      if (sent >= totalBytes && sentAllAt === null) {
        sentAllAt = now;
        // No more bytes means no more updates: the line keeps counting the wait on its own.
        waiting = setInterval(() => update(sent, true), this.tty ? 1000 : this.plainEveryMs);
        waiting.unref();
        force = this.tty; // a log (not a terminal) hears of it at the next interval, as of any upload
      }
      if (this.tty) {
        if (!force && now - last < 100) return; // a redraw per 100 ms is plenty and costs nothing measurable
        last = now;
        this.out.write(`\r\x1b[K${render(sent)}`);
      } else if (force || now - (last || start) >= this.plainEveryMs) {
        last = now;
        this.out.write(`${render(sent)}\n`);
      }
    };
    // A download can take longer than its upload (PicoShare 1.1.8 read 500MiB back at 0.1-0.4 MiB/s): it gets its own line.
    let verifyStart: number | null = null;
    const verify = (received: number, total: number) => {
      const now = Date.now();
      if (verifyStart === null) {
        verifyStart = last = now;
        return;
      }
      if (now - last < (this.tty ? 100 : this.plainEveryMs)) return;
      last = now;
      const { done, rateEta } = pace(received, total, verifyStart);
      const text = `${label}  verifying the download ${done}  ${rateEta}`;
      this.out.write(this.tty ? `\r\x1b[K${text}` : `${text}\n`);
    };
    return {
      update: (sent) => update(sent),
      done: () => {
        if (waiting) clearInterval(waiting);
        if (this.tty) this.out.write('\r\x1b[K');
      },
      verify,
    };
  }
}

/** "k/n MiB" and "r MiB/s  ETA e s" for `bytes` of `totalBytes` moved since `startMs`: the upload's line and the download's. */
function pace(bytes: number, totalBytes: number, startMs: number): { done: string; rateEta: string } {
  const secs = (Date.now() - startMs) / 1000;
  const rate = secs > 0 ? bytes / MiB / secs : 0;
  const eta = rate > 0 ? `${((totalBytes - bytes) / MiB / rate).toFixed(0)} s` : '?';
  return { done: `${(bytes / MiB).toFixed(0)}/${(totalBytes / MiB).toFixed(0)} MiB`, rateEta: `${rate.toFixed(1)} MiB/s  ETA ${eta}` };
}
