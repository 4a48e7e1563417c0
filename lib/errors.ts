// Error kinds the entry points turn into exit codes: InputError is the user's
// input being wrong (exit 2, before anything starts); anything else is the
// suite failing to run (exit 1).
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/** Where an entry point writes: the process's streams, or buffers in a test that calls main in-process. */
export interface Io {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean };
}

export const PROCESS_IO: Io = { stdout: process.stdout, stderr: process.stderr };

/** An entry point's body, with every error turned into one "Error: ..." line on stderr and its exit code: 2 bad input, else 1. */
export async function reportErrors(io: Io, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    io.stderr.write(`Error: ${(e as Error).message}\n`);
    return e instanceof InputError ? 2 : 1;
  }
}

/**
 * Runs an entry point's `main(argv) -> exit code` when its module is the file
 * node was started with (tests import the same module and call main in-process).
 * A thrown error becomes one "Error: ..." line: exit 2 for an InputError, else 1.
 */
export function runIfMain(moduleUrl: string, main: (argv: string[]) => Promise<number>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(path.resolve(process.argv[1])).href) return;
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`Error: ${(e as Error).message}\n`);
      process.exit(e instanceof InputError ? 2 : 1);
    },
  );
}
