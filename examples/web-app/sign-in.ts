import type Router from '@koa/router';
import type { Context } from 'koa';
import * as oidc from 'openid-client';
import { escapeHtml } from './pages.js';
import type { Session, SessionStore } from './sessions.js';

/** A sign-in that has not come back from Latchkey within this time is abandoned. */
const pendingSignInTtlSeconds = 600;

export type SignInDeps = {
  /** The app's openid-client configuration (Latchkey's endpoints, this client's id and secret). */
  config: oidc.Configuration;
  /** The app's own base URL; Latchkey must have `{url}/callback` registered as a redirect URI. */
  url: string;
  /** The API the access token is for (RFC 8707 `resource`). */
  apiAudience: string;
  now: () => number;
  sessions: SessionStore;
  currentSession: (ctx: Context) => Session | undefined;
  setSessionCookie: (ctx: Context, session: Session) => void;
  page: (ctx: Context, status: number, title: string, body: string) => void;
};

/**
 * The authorization code flow with PKCE (S256), `state` and `nonce`, all kept server-side until the callback
 * (RFC 9700 §2.1); the callback gives the session a new id, so an id planted before sign-in is worthless.
 */
export function addSignInRoutes(router: Router, deps: SignInDeps) {
  const { config, now, sessions, currentSession, setSessionCookie, page } = deps;
  const redirectUri = `${deps.url}/callback`;

  router.get('/login', async (ctx) => {
    const session = currentSession(ctx) ?? sessions.create();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    session.pending = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier, startedAt: now() };
    setSessionCookie(ctx, session);
    const authorizationUrl = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email profile read',
      resource: deps.apiAudience,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: session.pending.state,
      nonce: session.pending.nonce,
    });
    ctx.redirect(authorizationUrl.href);
  });

  router.get('/callback', async (ctx) => {
    const session = currentSession(ctx);
    const pending = session?.pending;
    if (!session || !pending || now() - pending.startedAt > pendingSignInTtlSeconds * 1000) {
      return page(ctx, 400, 'Sign-in failed', '<p class="error">This sign-in was not started here or took too long.</p>\n<p><a href="/login">Sign in again</a></p>');
    }
    session.pending = undefined;
    let tokens;
    try {
      tokens = await oidc.authorizationCodeGrant(config, new URL(ctx.originalUrl, deps.url), {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      // Denied consent, a wrong state, a bad code …: the reason, never a stack trace.
      const reason = error instanceof oidc.AuthorizationResponseError || error instanceof oidc.ResponseBodyError
        ? error.error_description ?? error.error
        : (error as Error).message;
      return page(ctx, 400, 'Sign-in failed', `<p class="error">${escapeHtml(reason)}</p>\n<p><a href="/">Back</a></p>`);
    }
    const claims = tokens.claims()!;
    const signedIn = sessions.renew(session);
    signedIn.user = {
      sub: claims.sub,
      sid: typeof claims.sid === 'string' ? claims.sid : undefined,
      idToken: tokens.id_token!,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      accessTokenExpiresAt: now() + (tokens.expiresIn() ?? 0) * 1000,
    };
    setSessionCookie(ctx, signedIn);
    ctx.redirect('/');
  });
}
