// Progress on stderr: a live line on a terminal (bytes, MiB/s, ETA, case k of n),
// plain periodic lines when stderr is not a terminal (CI logs, files).
import { MiB } from './units.ts';

export interface UploadProgress {
  update(sentBytes: number): void;
  done(): void;
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
    const render = (sent: number) => {
      const secs = (Date.now() - start) / 1000;
      const rate = secs > 0 ? sent / MiB / secs : 0;
      const eta = rate > 0 ? (totalBytes - sent) / MiB / rate : NaN;
      return `${label}  ${(sent / MiB).toFixed(0)}/${(totalBytes / MiB).toFixed(0)} MiB  ` +
        `${rate.toFixed(1)} MiB/s  ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)} s` : '?'}`;
    };
    return {
      update: (sent) => {
        const now = Date.now();
        if (this.tty) {
          if (now - last < 100) return; // a redraw per 100 ms is plenty and costs nothing measurable
          last = now;
          this.out.write(`\r\x1b[K${render(sent)}`);
        } else if (now - (last || start) >= this.plainEveryMs) {
          last = now;
          this.out.write(`${render(sent)}\n`);
        }
      },
      done: () => { if (this.tty) this.out.write('\r\x1b[K'); },
    };
  }
}
