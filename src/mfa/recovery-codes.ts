import { createHash, randomInt } from 'node:crypto';

/** Crockford's base32: no i, l, o or u, so a code read aloud or copied by hand has no look-alike letters. */
const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
/** 16 characters of 5 bits: 80 bits, far beyond guessing, online or from a stolen table of hashes. */
const codeLength = 16;
export const recoveryCodeCount = 10;

/** A new code, shown as four groups of four: `7k2m-…`. */
function newCode(): string {
  const chars = Array.from({ length: codeLength }, () => alphabet[randomInt(alphabet.length)]);
  return chars.join('').match(/.{4}/g)!.join('-');
}

export function newRecoveryCodes(): string[] {
  return Array.from({ length: recoveryCodeCount }, newCode);
}

/** A typed code in its stored form: case, spaces and dashes ignored, o read as 0 and i or l as 1 (Crockford). */
export function normalizeRecoveryCode(typed: string): string | undefined {
  const code = typed.toLowerCase().replace(/[\s-]/g, '').replace(/o/g, '0').replace(/[il]/g, '1');
  return code.length === codeLength && [...code].every((char) => alphabet.includes(char)) ? code : undefined;
}

/**
 * What is stored: SHA-256 of the account and the code. A fast hash is enough for 80 random bits (a slow one only
 * matters for what people choose); the account in the input makes equal codes of two accounts hash apart.
 */
export function hashRecoveryCode(accountId: string, normalized: string): string {
  return createHash('sha256').update(`latchkey-recovery-code\n${accountId}\n${normalized}`).digest('hex');
}
