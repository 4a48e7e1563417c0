// The stand-in's STANDIN_* fault knobs as run-tests passes them through,
// checked before anything starts: a bad value made every iteration not_ready
// (the stand-in printing its usage into failures.log each time), and a
// misspelt name did nothing at all. The rules are the stand-in's own
// (lib/standin/standin.mts parseConfig); test/hardening.test.mts holds them together.
//   standinKnobsFrom(process.env)  // { STANDIN_THROTTLE_MIBS: '50' }, or an InputError
import { InputError } from '../errors.ts';

type Rule = { min: number; max?: number; integer: boolean } | 'switch' | { choices: string[] };
export const STANDIN_KNOBS: Record<string, Rule> = {
  STANDIN_THROTTLE_MIBS: { min: Number.MIN_VALUE, integer: false },
  STANDIN_PROCESSING_DELAY_MS: { min: 0, integer: true },
  STANDIN_CRASH_AFTER_BYTES: { min: 1, integer: true },
  STANDIN_STATUS: { min: 100, max: 599, integer: true },
  STANDIN_HOLD_IN_MEMORY: 'switch',
  STANDIN_CORRUPT_STORED: 'switch',
  STANDIN_DOWNLOAD_IN_MEMORY: 'switch',
  STANDIN_SLOWDOWN_PCT: { min: 0, integer: false },
  STANDIN_SLOWDOWN_MIN_BYTES: { min: 0, integer: true },
  STANDIN_DOWNLOAD_ROUTE: { choices: ['dash', 'bang'] },
  STANDIN_BURN_CPU_MS: { min: 0, integer: true },
  STANDIN_DOWNLOAD_THROTTLE_MIBS: { min: Number.MIN_VALUE, integer: false },
};
/** Set by providers themselves (a VM's stand-in binds every interface of the guest), never by a user. */
const PROVIDER_ONLY = ['STANDIN_HOST'];

/** Why a knob's value is refused, or null. Pure. */
export function knobProblem(name: string, value: string): string | null {
  const rule = STANDIN_KNOBS[name];
  if (!rule) {
    const why = PROVIDER_ONLY.includes(name) ? 'set by the provider, not by hand' : 'not a stand-in knob';
    return `${name}: ${why} (knobs: ${Object.keys(STANDIN_KNOBS).join(', ')})`;
  }
  if (rule === 'switch') {
    return ['1', '0', 'true', 'false', ''].includes(value) ? null : `${name}=${JSON.stringify(value)}: expected 1 or 0`;
  }
  if (value === '') return null; // unset, as the stand-in reads it
  if ('choices' in rule) return rule.choices.includes(value) ? null : `${name}=${JSON.stringify(value)}: expected ${rule.choices.join(' or ')}`;
  const n = Number(value);
  const range = rule.max !== undefined ? `${rule.min}-${rule.max}` : rule.min === Number.MIN_VALUE ? '> 0' : `>= ${rule.min}`;
  if (value.trim() === '' || !Number.isFinite(n) || n < rule.min || (rule.max !== undefined && n > rule.max) || (rule.integer && !Number.isInteger(n))) {
    return `${name}=${JSON.stringify(value)}: expected ${rule.integer ? 'a whole number' : 'a number'} ${range}`;
  }
  return null;
}

/** The STANDIN_* variables of `env`, each checked: the first bad one is an InputError (exit 2). */
export function standinKnobsFrom(env: NodeJS.ProcessEnv): Record<string, string> {
  const knobs = Object.fromEntries(Object.entries(env).filter(([k, v]) => k.startsWith('STANDIN_') && v !== undefined)) as Record<string, string>;
  for (const [name, value] of Object.entries(knobs)) {
    const problem = knobProblem(name, value);
    if (problem) throw new InputError(`stand-in knob ${problem}`);
  }
  return knobs;
}
