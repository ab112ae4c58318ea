import type { Message } from '../i18n/catalogues.js';

/**
 * NIST SP 800-63B §3.1.1.2 allows a verifier to cap length as long as at least 64 characters are accepted. 256
 * leaves room for any passphrase while bounding what each sign-in attempt may feed to argon2 (and what the login
 * form must carry), so long inputs cannot be used to make password checks expensive.
 */
export const maximumPasswordLength = 256;

/**
 * About 49,000 passwords seen most often in breaches (zxcvbn's list), compared case-insensitively. Imported when a
 * password is first set rather than at start-up: the list holds 3 to 6 MB of a server's memory, and a server that
 * only signs people in never needs it.
 */
async function loadCommonPasswords(): Promise<Set<string>> {
  const { dictionary } = await import('@zxcvbn-ts/language-common');
  return new Set(dictionary['passwords-common'].map((password) => password.toLowerCase()));
}

/**
 * The password rules of NIST SP 800-63B §3.1.1.2: a minimum length (counted in Unicode code points, after NFC
 * normalisation), long passphrases allowed, no password found in a list of commonly used ones, and deliberately no
 * composition rules (required digits, symbols, mixed case) or periodic expiry.
 */
export function createPasswordPolicy(settings: { minLength: number }) {
  let commonPasswords: Promise<Set<string>> | undefined;
  return {
    /** Why the password is refused (a page says it in the reader's language, the CLI in English), or undefined. */
    async problem(password: string): Promise<Message | undefined> {
      const length = [...password.normalize('NFC')].length;
      if (length < settings.minLength) return { key: 'account_rules.password.too_short', params: { min: settings.minLength } };
      if (length > maximumPasswordLength) return { key: 'account_rules.password.too_long', params: { max: maximumPasswordLength } };
      // A failed import is tried again by the next password.
      commonPasswords ??= loadCommonPasswords().catch((error: unknown) => {
        commonPasswords = undefined;
        throw error;
      });
      if ((await commonPasswords).has(password.toLowerCase())) return { key: 'account_rules.password.common' };
      return undefined;
    },
  };
}

export type PasswordPolicy = ReturnType<typeof createPasswordPolicy>;
