import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * CSRF tokens for the hosted forms: an HMAC of the interaction uid under a server secret. The uid is bound to the
 * browser by oidc-provider's signed interaction cookie, so a token only works for the browser it was shown to.
 * `purpose` keeps one kind of form's tokens from passing another's (the account pages key theirs by session).
 */
export function createCsrf(key: string, purpose = 'interaction') {
  const tokenFor = (uid: string) => createHmac('sha256', key).update(`latchkey-${purpose}-csrf:${uid}`).digest('base64url');
  return {
    tokenFor,
    isValid(uid: string, token: unknown): boolean {
      if (typeof token !== 'string') return false;
      const expected = Buffer.from(tokenFor(uid));
      const given = Buffer.from(token);
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}

export type Csrf = ReturnType<typeof createCsrf>;
