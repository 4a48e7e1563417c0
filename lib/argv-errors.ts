// node:util parseArgs errors in the suite's own words. A flag whose value is
// missing (last on the line, or followed by something starting with '-') gets
// Node's advice about "ambiguous" arguments and '--ref=-XYZ'; the suite says
// which flag lacks its value and what came after it instead.
//   try { parseArgs({ args: argv, ... }) } catch (e) { throw argvError(e, argv) }
import { InputError } from './errors.ts';

/** The InputError for a parseArgs failure on `argv`: a missing value named by flag, anything else on one line. Pure. */
export function argvError(e: unknown, argv: string[]): InputError {
  const message = (e as Error).message;
  const flag = /^Option '(--?[\w-]+)(?: <value>)?' argument (missing|is ambiguous)/.exec(message)?.[1];
  if (flag) {
    const at = argv.indexOf(flag);
    const next = at >= 0 ? argv[at + 1] : undefined;
    if (next === undefined) return new InputError(`${flag} needs a value, and nothing follows it`);
    if (/^--|^-[A-Za-z]$/.test(next)) return new InputError(`${flag} needs a value, but is followed by the option ${next}`);
    return new InputError(`${flag} needs a value, but is followed by ${JSON.stringify(next)}, which starts with "-" and is read as an option` +
      ` (if that is the value, write ${flag}=${next})`);
  }
  // Node's hint for an unknown option ends in an unbalanced quote ('-- "--x"); a folder starting with '-' is rare.
  return new InputError(`${message.replace(/\. To specify a positional argument[\s\S]*$/, '').replace(/\s*\n+\s*/g, ' ')} (see --help)`);
}
