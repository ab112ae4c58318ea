import type Router from '@koa/router';
import { createRemoteJWKSet } from 'jose';
import type { Context, Next } from 'koa';
import * as oidc from 'openid-client';
import { createLogoutTokenVerifier, InvalidLogoutToken } from './logout-token.js';
import type { Session, SessionStore } from './sessions.js';

export type SignOutDeps = {
  /** The app's openid-client configuration: Latchkey's end_session_endpoint, issuer and jwks_uri. */
  config: oidc.Configuration;
  clientId: string;
  now: () => number;
  sessions: SessionStore;
  /** The app's own base URL; Latchkey must have `{url}/signed-out` registered as a post-logout redirect URI. */
  url: string;
  /** Lets only a signed-in session's own forms through and puts that session in `ctx.state.session`. */
  requireCsrf: (ctx: Context, next: Next) => Promise<void>;
  clearSessionCookie: (ctx: Context) => void;
  page: (ctx: Context, status: number, title: string, body: string) => void;
};

/**
 * The two ways a session here ends: the user signs out in this app (which continues to Latchkey: RP-initiated
 * logout), or Latchkey reports that the user signed out somewhere else (back-channel logout).
 */
export function addSignOutRoutes(router: Router, deps: SignOutDeps) {
  const { config, sessions } = deps;
  const postLogoutRedirectUri = `${deps.url}/signed-out`;
  const issuerMetadata = config.serverMetadata();
  const verifyLogoutToken = createLogoutTokenVerifier({
    issuer: issuerMetadata.issuer,
    clientId: deps.clientId,
    jwks: createRemoteJWKSet(new URL(issuerMetadata.jwks_uri!)),
    now: deps.now,
  });

  router.post('/logout', deps.requireCsrf, (ctx) => {
    const session = ctx.state.session as Session;
    sessions.destroy(session.id);
    deps.clearSessionCookie(ctx);
    if (!session.user) return ctx.redirect('/');
    // RP-initiated logout: Latchkey ends its session (and tells the other apps through back-channel logout).
    ctx.status = 303;
    ctx.redirect(oidc.buildEndSessionUrl(config, {
      id_token_hint: session.user.idToken,
      post_logout_redirect_uri: postLogoutRedirectUri,
    }).href);
  });

  router.get('/signed-out', (ctx) => {
    deps.page(ctx, 200, 'Signed out', '<p>You are signed out of this app and of Latchkey.</p>\n<p><a class="button" href="/login">Sign in again</a></p>');
  });

  // OpenID Connect Back-Channel Logout 1.0: Latchkey posts a logout token here when the user signs out anywhere.
  router.post('/backchannel-logout', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    try {
      const { sub, sid } = await verifyLogoutToken((ctx.request.body as Record<string, unknown> | undefined)?.logout_token);
      // §2.7: a sid ends that Latchkey session's sessions here; a sub alone ends all of that user's sessions.
      sessions.destroyWhere((user) => (sid && user.sid ? user.sid === sid : user.sub === sub));
      ctx.status = 200;
    } catch (error) {
      if (!(error instanceof InvalidLogoutToken)) throw error;
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: error.message };
    }
  });
}
