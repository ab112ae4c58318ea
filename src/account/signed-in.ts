import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { isSessionValid, type Accounts } from '../accounts/accounts.js';
import { createCsrf } from '../interaction/csrf.js';
import type { User } from '../store/users.js';
import type { SessionActivityLog } from './session-activity.js';

/** The person a request comes from: their active account and the Latchkey session (cookie) it came with. */
export type SignedIn = { user: User; sessionUid: string; signedInAt: number; csrf: string };

export type SignedInGuard = ReturnType<typeof createSignedInGuard>;

/**
 * Who is signed in, as oidc-provider's own session says (`Session.get` reads the signed session cookie and loads
 * the stored session, which has expired or been ended when it is not found). Only the account of that session is
 * ever read or changed: no account page takes an account or user id from the request.
 *
 * The account forms' CSRF token is an HMAC, under the cookie secret, of the session uid and the account: it only
 * works with the session it was shown to, and a new sign-in as someone else invalidates it.
 */
export function createSignedInGuard(deps: { provider: Provider; accounts: Accounts; activity: SessionActivityLog; csrfKey: string }) {
  const csrf = createCsrf(deps.csrfKey, 'account');
  const csrfSubject = (uid: string, accountId: string) => `${uid}:${accountId}`;
  return {
    async load(ctx: Context): Promise<SignedIn | undefined> {
      const session = await deps.provider.Session.get(ctx as unknown as KoaContextWithOIDC);
      if (!session.accountId || !session.uid) return undefined;
      const user = await deps.accounts.findActive(session.accountId);
      if (!user || !isSessionValid(user, session.loginTs)) return undefined;
      await deps.activity.record(user.id, session.uid, { ip: ctx.ip, userAgent: ctx.get('user-agent') });
      return { user, sessionUid: session.uid, signedInAt: (session.loginTs ?? 0) * 1000, csrf: csrf.tokenFor(csrfSubject(session.uid, user.id)) };
    },
    /**
     * Marks this browser's session as signed in now (the person has just typed their password), so that it alone
     * outlives a password change; returns that moment in epoch ms, second-exact as oidc-provider keeps it.
     */
    async renew(ctx: Context): Promise<number> {
      const session = await deps.provider.Session.get(ctx as unknown as KoaContextWithOIDC);
      session.loginTs = Math.floor(Date.now() / 1000);
      await session.persist();
      return session.loginTs * 1000;
    },
    isValidCsrf(signedIn: SignedIn, token: unknown): boolean {
      return csrf.isValid(csrfSubject(signedIn.sessionUid, signedIn.user.id), token);
    },
  };
}
