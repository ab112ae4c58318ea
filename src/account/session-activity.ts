import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { OidcPayloadStore } from '../store/oidc-payloads.js';

/** Where and how a session was last used; oidc-provider's session payload has no room for it (Session.IN_PAYLOAD). */
export type SessionActivity = { ip: string | null; userAgent: string | null; lastUsedAt: number };

/** A header is whatever the client sent: only this much of it is kept. */
const maxUserAgentLength = 512;

export type SessionActivityLog = ReturnType<typeof createSessionActivityLog>;

/**
 * The activity of each session, stored next to the session itself: an `oidc_payloads` row of its own model
 * (`SessionActivity`, keyed by the session's uid) with the session's account and lifetime. So whatever deletes a
 * session's rows for an account (a password change, `users logout`, the purge of expired rows) deletes it too, and
 * a row left by a session that ended otherwise expires with it. oidc-provider never reads this model.
 */
export function createSessionActivityLog(deps: { payloads: OidcPayloadStore; sessionTtlSeconds: number; now: () => number }) {
  const { payloads, now } = deps;
  return {
    async record(accountId: string, sessionUid: string, seen: { ip: string; userAgent: string | undefined }): Promise<void> {
      const at = now();
      const activity: SessionActivity = { ip: seen.ip || null, userAgent: seen.userAgent?.slice(0, maxUserAgentLength) ?? null, lastUsedAt: at };
      await payloads.upsert({
        model: 'SessionActivity', id: sessionUid, payload: activity, accountId, expiresAt: at + deps.sessionTtlSeconds * 1000,
      });
    },
    async find(sessionUid: string): Promise<SessionActivity | undefined> {
      return (await payloads.find('SessionActivity', sessionUid, now()))?.payload as SessionActivity | undefined;
    },
  };
}

/**
 * Every authorization a session answers (a sign-in, or single sign-on into another app) marks the session used,
 * from this IP and browser. Recording does not hold up the answer; losing one mark only makes "last used" older.
 */
export function recordSessionActivity(provider: Provider, log: SessionActivityLog, onError: (error: unknown) => void): void {
  provider.on('authorization.success', (ctx: KoaContextWithOIDC) => {
    const session = ctx.oidc?.session;
    if (!session?.accountId || !session.uid) return;
    log.record(session.accountId, session.uid, { ip: ctx.ip, userAgent: ctx.get('user-agent') }).catch(onError);
  });
}
