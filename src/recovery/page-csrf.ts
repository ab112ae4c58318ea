import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';

/**
 * CSRF tokens for the pages outside a sign-in (forgot password, sign-up, the pages a mailed link opens in a fresh
 * browser), where there is no interaction uid to key them by (interaction/csrf.ts). A random value lives in an
 * HttpOnly, SameSite=Lax cookie (`__Host-` on https, so no other host can plant it); the form carries the HMAC of
 * it under the server's CSRF key. Another site can make the browser send the cookie, but can neither read it nor
 * compute the HMAC, so it cannot fill in the field; a request without the cookie, or with another browser's, fails.
 */
export function createPageCsrf(options: { key: string; isHttps: boolean }) {
  const cookieName = options.isHttps ? '__Host-latchkey-form' : 'latchkey-form';
  const macOf = (value: string) => createHmac('sha256', options.key).update(`latchkey-page-csrf:${value}`).digest('base64url');

  return {
    /** The form field for this browser, setting its cookie first if it has none. */
    fieldFor(ctx: Context): string {
      let value = ctx.cookies.get(cookieName);
      if (!value || !/^[A-Za-z0-9_-]{22}$/.test(value)) {
        value = randomBytes(16).toString('base64url');
        ctx.cookies.set(cookieName, value, { httpOnly: true, sameSite: 'lax', secure: options.isHttps, path: '/', overwrite: true });
      }
      return macOf(value);
    },

    isValid(ctx: Context, field: unknown): boolean {
      const value = ctx.cookies.get(cookieName);
      if (!value || typeof field !== 'string') return false;
      const expected = Buffer.from(macOf(value));
      const given = Buffer.from(field);
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}

export type PageCsrf = ReturnType<typeof createPageCsrf>;

/** A value signed with the server's key, valid until `expiresAt` (the "send the link again" button's account). */
export function createSignedTickets(key: string) {
  const macOf = (payload: string) => createHmac('sha256', key).update(`latchkey-ticket:${payload}`).digest('base64url');
  return {
    issue(subject: string, expiresAt: number): string {
      const payload = `${Buffer.from(subject).toString('base64url')}.${expiresAt}`;
      return `${payload}.${macOf(payload)}`;
    },
    /** The subject of a ticket this server issued and that has not expired at `now`. */
    verify(ticket: unknown, now: number): string | undefined {
      if (typeof ticket !== 'string') return undefined;
      const [subject, expiresAt, mac] = ticket.split('.');
      if (!subject || !expiresAt || !mac || !/^\d+$/.test(expiresAt) || Number(expiresAt) <= now) return undefined;
      const expected = Buffer.from(macOf(`${subject}.${expiresAt}`));
      const given = Buffer.from(mac);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
      return Buffer.from(subject, 'base64url').toString();
    },
  };
}
