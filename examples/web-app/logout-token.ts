import { errors, jwtVerify, type JWTVerifyGetKey } from 'jose';

const backchannelLogoutEvent = 'http://schemas.openid.net/event/backchannel-logout';

export type LogoutToken = { sub?: string; sid?: string };

export class InvalidLogoutToken extends Error {}

/**
 * Validates a logout token as OpenID Connect Back-Channel Logout 1.0 §2.6 asks: signature (against the issuer's
 * JWKS, the ID token algorithm), iss, aud, iat and exp, typ logout+jwt (§2.4), the back-channel logout event,
 * a sub or sid, no nonce, and a jti not seen before (kept until the token expires).
 */
export function createLogoutTokenVerifier(options: { issuer: string; clientId: string; jwks: JWTVerifyGetKey; now: () => number }) {
  const seenJtis = new Map<string, number>();

  return async function verifyLogoutToken(token: unknown): Promise<LogoutToken> {
    if (typeof token !== 'string' || token === '') throw new InvalidLogoutToken('logout_token is missing');
    const nowSeconds = Math.floor(options.now() / 1000);
    let payload;
    try {
      ({ payload } = await jwtVerify(token, options.jwks, {
        issuer: options.issuer,
        audience: options.clientId,
        typ: 'logout+jwt',
        algorithms: ['RS256'],
        requiredClaims: ['iat', 'exp', 'jti'],
        currentDate: new Date(nowSeconds * 1000),
      }));
    } catch (error) {
      if (error instanceof errors.JOSEError) throw new InvalidLogoutToken(`logout_token rejected: ${error.code}`);
      throw error;
    }
    const events = payload.events as Record<string, unknown> | undefined;
    const event = events?.[backchannelLogoutEvent];
    if (!event || typeof event !== 'object' || Array.isArray(event)) throw new InvalidLogoutToken('logout_token lacks the back-channel logout event');
    if (typeof payload.sub !== 'string' && typeof payload.sid !== 'string') throw new InvalidLogoutToken('logout_token names neither sub nor sid');
    if ('nonce' in payload) throw new InvalidLogoutToken('logout_token must not contain a nonce');

    for (const [jti, expiresAt] of seenJtis) if (expiresAt < nowSeconds) seenJtis.delete(jti);
    if (seenJtis.has(payload.jti!)) throw new InvalidLogoutToken('logout_token was already used');
    seenJtis.set(payload.jti!, payload.exp!);

    return { sub: payload.sub, sid: typeof payload.sid === 'string' ? payload.sid : undefined };
  };
}
