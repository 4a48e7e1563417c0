// Checks on the shared secret as read from the environment or .env, never
// showing it: a value that opens a quote it never closes (.env's
// PS_SHARED_SECRET="unterminated) is taken by dotenv quote and all.
//   secretWarning('"abc')  // a warning line, or null
export function secretWarning(secret: string): string | null {
  const q = secret[0];
  if ((q === '"' || q === "'" || q === '`') && (secret.length === 1 || !secret.endsWith(q))) {
    return `WARNING: PS_SHARED_SECRET starts with a ${q} that is never closed: the quote is part of the secret as used ` +
      '(in .env, close the quote or drop it)';
  }
  return null;
}
