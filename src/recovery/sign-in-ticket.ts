import type { Context } from 'koa';
import { signInUrl } from '../account/account-client.js';
import type { User } from '../store/users.js';

export type SignInTicket = ReturnType<typeof createSignInTicket>;

/**
 * The browser that accepted an invitation is signed in (docs/security.md, "Mailed links"): the invitation page hands
 * it a single-use ticket (INVITE_SIGN_IN_TTL) in an HttpOnly cookie, never in a URL, and sends it to the account
 * page's sign-in; the login step of that interaction takes the cookie instead of showing the form. On https the
 * cookie is `__Host-` (so Path=/): no sibling host can plant its own ticket to sign this browser in as someone else.
 */
export function createSignInTicket(deps: {
  issuer: string; ttlSeconds: number;
  /** Uses the ticket up and returns its active account (invitations.redeemSignIn); undefined when it is not valid. */
  redeem(ticket: string, ip: string): Promise<User | undefined>;
}) {
  const isHttps = deps.issuer.startsWith('https:');
  const cookieName = isHttps ? '__Host-latchkey-sign-in' : 'latchkey-sign-in';
  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, secure: isHttps, path: '/', overwrite: true };
  return {
    /**
     * After the password is set: the ticket in the cookie, then on to the sign-in the person left (`back`) or the
     * account page's, with prompt=login so that a session of someone else in this browser does not stand in for it.
     */
    hand(ctx: Context, ticket: string, back: string | undefined): void {
      ctx.cookies.set(cookieName, ticket, { ...cookieOptions, maxAge: deps.ttlSeconds * 1000 });
      ctx.status = 303;
      ctx.redirect(back ?? signInUrl(deps.issuer, '/account', { prompt: 'login' }));
    },

    /** The login step: the account of this browser's ticket, used up and the cookie cleared; undefined without one. */
    async take(ctx: Context): Promise<User | undefined> {
      const ticket = ctx.cookies.get(cookieName);
      if (!ticket) return undefined;
      ctx.cookies.set(cookieName, null, cookieOptions);
      return deps.redeem(ticket, ctx.ip);
    },
  };
}
