import { dictionary } from '@zxcvbn-ts/language-common';

/**
 * NIST SP 800-63B §3.1.1.2 allows a verifier to cap length as long as at least 64 characters are accepted. 256
 * leaves room for any passphrase while bounding what each sign-in attempt may feed to argon2 (and what the login
 * form must carry), so long inputs cannot be used to make password checks expensive.
 */
export const maximumPasswordLength = 256;

// About 49,000 passwords seen most often in breaches (zxcvbn's list), compared case-insensitively.
const commonPasswords = new Set(dictionary['passwords-common'].map((password) => password.toLowerCase()));

/**
 * The password rules of NIST SP 800-63B §3.1.1.2: a minimum length (counted in Unicode code points, after NFC
 * normalisation), long passphrases allowed, no password found in a list of commonly used ones, and deliberately no
 * composition rules (required digits, symbols, mixed case) or periodic expiry.
 */
export function createPasswordPolicy(settings: { minLength: number }) {
  return {
    /** Why the password is refused, or undefined when it is acceptable. */
    problem(password: string): string | undefined {
      const length = [...password.normalize('NFC')].length;
      if (length < settings.minLength) return `the password must have at least ${settings.minLength} characters`;
      if (length > maximumPasswordLength) return `the password must have at most ${maximumPasswordLength} characters`;
      if (commonPasswords.has(password.toLowerCase())) return 'the password is one of the most commonly used passwords; choose another';
      return undefined;
    },
  };
}

export type PasswordPolicy = ReturnType<typeof createPasswordPolicy>;
