import * as oidc from 'openid-client';
import type { Session } from './sessions.js';

/** Refresh a little before the access token expires, so it does not expire on its way to the API. */
const refreshMarginSeconds = 5;

/**
 * Hands out a session's access token for calling the API, refreshing it first when it has expired (or is about to).
 * Latchkey rotates refresh tokens and treats a second use of the old one as theft (revoking the grant), so
 * concurrent requests of one session wait for a single refresh instead of each presenting the same refresh token.
 */
export function createAccessTokenRefresher(options: { config: oidc.Configuration; now: () => number }) {
  const { config, now } = options;

  /** Returns an access token that has not expired, or nothing when the session has none and cannot get one. */
  return async function freshAccessToken(session: Session): Promise<string | undefined> {
    while (session.refreshing) await session.refreshing;
    const user = session.user;
    if (!user) return undefined;
    if (now() < user.accessTokenExpiresAt - refreshMarginSeconds * 1000) return user.accessToken;
    if (!user.refreshToken) return undefined;
    session.refreshing = (async () => {
      try {
        const tokens = await oidc.refreshTokenGrant(config, user.refreshToken!);
        user.accessToken = tokens.access_token;
        user.refreshToken = tokens.refresh_token ?? user.refreshToken;
        user.idToken = tokens.id_token ?? user.idToken;
        user.accessTokenExpiresAt = now() + (tokens.expiresIn() ?? 0) * 1000;
      } catch (error) {
        // Refused (the user signed out at Latchkey, was disabled, or the refresh token expired): sign out here too.
        if (!(error instanceof oidc.ResponseBodyError)) throw error;
        session.user = undefined;
      } finally {
        session.refreshing = undefined;
      }
    })();
    await session.refreshing;
    return session.user?.accessToken;
  };
}
