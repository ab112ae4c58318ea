import { dictionary } from '@zxcvbn-ts/language-common';
import type { Message } from '../i18n/catalogues.js';

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
    /** Why the password is refused (a page says it in the reader's language, the CLI in English), or undefined. */
    problem(password: string): Message | undefined {
      const length = [...password.normalize('NFC')].length;
      if (length < settings.minLength) return { key: 'account_rules.password.too_short', params: { min: settings.minLength } };
      if (length > maximumPasswordLength) return { key: 'account_rules.password.too_long', params: { max: maximumPasswordLength } };
      if (commonPasswords.has(password.toLowerCase())) return { key: 'account_rules.password.common' };
      return undefined;
    },
  };
}

export type PasswordPolicy = ReturnType<typeof createPasswordPolicy>;
