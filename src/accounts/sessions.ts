import type { OidcPayloadStore, StoredSession } from '../store/oidc-payloads.js';

/** A client a session signed the user in to, and the `sid` that client knows the session by (ID token, logout token). */
export type SessionClient = { clientId: string; sid: string | null };

export type UserSession = { uid: string; signedInAt: number | null; expiresAt: number | null; clients: SessionClient[] };

export type LogoutDelivery = { clientId: string; sid: string | null; isDelivered: boolean; error?: string };

/** Sends back-channel logout tokens (oidc/back-channel-logout.ts); clients without a back-channel URI are skipped. */
export type BackChannel = { send(accountId: string, clients: SessionClient[]): Promise<LogoutDelivery[]> };

export type LogoutReport = { sessionsEnded: number; deliveries: LogoutDelivery[] };

type SessionPayload = { uid?: string; accountId?: string; loginTs?: number; authorizations?: Record<string, { sid?: string; grantId?: string }> };

/** The grants a session holds, one per app it signed the user in to. */
const grantIdsOf = (stored: StoredSession) =>
  Object.values((stored.payload as SessionPayload).authorizations ?? {}).flatMap(({ grantId }) => (grantId ? [grantId] : []));

function toUserSession(stored: StoredSession): UserSession {
  const { uid, loginTs, authorizations } = stored.payload as SessionPayload;
  return {
    // oidc-provider's stable session identifier; the row id is the session cookie's value and is never shown.
    uid: uid ?? '',
    signedInAt: typeof loginTs === 'number' ? loginTs * 1000 : null,
    expiresAt: stored.expiresAt,
    clients: Object.entries(authorizations ?? {}).map(([clientId, { sid }]) => ({ clientId, sid: sid ?? null })),
  };
}

export type Sessions = ReturnType<typeof createSessions>;

/** The users' Latchkey sessions as oidc-provider stores them, and single logout when they end outside a browser. */
export function createSessions(deps: { payloads: OidcPayloadStore; backChannel: BackChannel; now?: () => number }) {
  const { payloads, backChannel } = deps;
  const now = deps.now ?? Date.now;

  async function sendLogoutTokens(ended: StoredSession[]): Promise<LogoutDelivery[]> {
    const deliveries = await Promise.all(ended.map((stored) => {
      const { accountId } = stored.payload as SessionPayload;
      const { clients } = toUserSession(stored);
      return accountId && clients.length > 0 ? backChannel.send(accountId, clients) : [];
    }));
    return deliveries.flat();
  }

  return {
    async list(accountId: string): Promise<UserSession[]> {
      return (await payloads.listSessions(accountId, now())).map(toUserSession);
    },

    /**
     * Ends every session of the account and revokes all its grants and tokens (offline ones too), then sends a
     * logout token to each client signed in through those sessions. Deletion comes first and does not depend on
     * the deliveries: a client that cannot be reached is reported, it does not keep the user signed in.
     */
    async endAll(accountId: string): Promise<LogoutReport> {
      const ended = await payloads.deleteByAccountId(accountId);
      return { sessionsEnded: ended.length, deliveries: await sendLogoutTokens(ended) };
    },

    /**
     * Ends one session of the account (by its uid) with the grants and tokens it holds, and tells its apps; undefined
     * when the account has no such session (another account's uid, or one already ended).
     */
    async endOne(accountId: string, uid: string): Promise<LogoutReport | undefined> {
      const session = (await payloads.listSessions(accountId, now())).find((stored) => toUserSession(stored).uid === uid);
      if (!session) return undefined;
      const ended = await payloads.deleteForAccount(accountId, { session: { uid, grantIds: grantIdsOf(session) }, isKept: false });
      return { sessionsEnded: ended.length, deliveries: await sendLogoutTokens(ended) };
    },

    /**
     * Ends every session of the account but `keepUid`, and every grant and token (offline ones too) but the ones
     * that session holds: after a password change, nothing signed in with the old password survives.
     */
    async endOthers(accountId: string, keepUid: string): Promise<LogoutReport> {
      const kept = (await payloads.listSessions(accountId, now())).find((stored) => toUserSession(stored).uid === keepUid);
      const ended = await payloads.deleteForAccount(accountId, { session: { uid: keepUid, grantIds: kept ? grantIdsOf(kept) : [] }, isKept: true });
      return { sessionsEnded: ended.length, deliveries: await sendLogoutTokens(ended) };
    },

    /** Revokes every grant, code and token the account gave one app, and tells the app for each session it holds. */
    async revokeClient(accountId: string, clientId: string): Promise<LogoutDelivery[]> {
      const sessions = (await payloads.listSessions(accountId, now())).map(toUserSession);
      await payloads.deleteForAccount(accountId, { clientId });
      const signedIn = sessions.flatMap((session) => session.clients.filter((client) => client.clientId === clientId));
      return signedIn.length > 0 ? backChannel.send(accountId, signedIn) : [];
    },

    /** Deletes one batch of expired rows; the clients of the expired sessions among them get logout tokens. */
    async purgeExpired(at: number, batchSize: number): Promise<{ count: number; deliveries: LogoutDelivery[] }> {
      const { count, sessions } = await payloads.deleteExpired(at, batchSize);
      return { count, deliveries: await sendLogoutTokens(sessions) };
    },
  };
}
