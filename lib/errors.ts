// Error kinds the entry points turn into exit codes: InputError is the user's
// input being wrong (exit 2, before anything starts); anything else is the
// suite failing to run (exit 1).

export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}
