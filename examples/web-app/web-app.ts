import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa, { type Context, type Next } from 'koa';
import * as oidc from 'openid-client';
import { createAccessTokenRefresher } from './access-token.js';
import { escapeHtml, postButton, renderPage, stylesheet } from './pages.js';
import { createSessionStore, type Session } from './sessions.js';
import { addSignInRoutes } from './sign-in.js';
import { addSignOutRoutes } from './sign-out.js';

export type WebAppOptions = {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The example API's base URL (GET {apiUrl}/hello) and the audience it is registered under at Latchkey. */
  apiUrl: string;
  apiAudience: string;
  /** 0 (the default) picks a free port. Register `{url}/callback`, `{url}/signed-out` and `{url}/backchannel-logout`. */
  port?: number;
  /** Shown on every page. */
  name: string;
  /** The app's clock in ms (tests move it forward to expire an access token). */
  now?: () => number;
  /** A session nobody used for this long ends (default 8 hours). */
  sessionIdleTimeoutSeconds?: number;
};

export type RunningWebApp = { url: string; close(): Promise<void> };

/** RFC 9700 §4.5 and §4.7: a session cookie the page's scripts cannot read and other sites' forms do not send. */
function sessionCookieOptions(isHttps: boolean) {
  return { httpOnly: true, sameSite: 'lax' as const, secure: isHttps, path: '/', overwrite: true, signed: false };
}

function isSameSecret(expected: string, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * An example web app (a "backend for frontend") that signs users in through Latchkey with the authorization code
 * flow + PKCE, keeps every token on the server and gives the browser nothing but a session cookie. This file puts it
 * together and serves the home page and the API call; the flows are in sign-in.ts, sign-out.ts and access-token.ts.
 */
export async function startWebApp(options: WebAppOptions): Promise<RunningWebApp> {
  const now = options.now ?? Date.now;
  const isHttpIssuer = new URL(options.issuer).protocol === 'http:';
  const config = await oidc.discovery(new URL(options.issuer), options.clientId, options.clientSecret, oidc.ClientSecretBasic(options.clientSecret), {
    execute: isHttpIssuer ? [oidc.allowInsecureRequests] : [],
  });
  const freshAccessToken = createAccessTokenRefresher({ config, now });
  const sessions = createSessionStore({ idleTimeoutSeconds: options.sessionIdleTimeoutSeconds ?? 8 * 3600, now });
  // Browsers do not isolate cookies by port: two apps on localhost need different cookie names.
  const cookieName = `app-session-${options.clientId.replace(/[^A-Za-z0-9_-]/g, '_')}`;

  let url = '';
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, () => resolve());
  });
  url = `http://localhost:${(server.address() as AddressInfo).port}`;
  const isHttps = url.startsWith('https:');

  const page = (ctx: Context, status: number, title: string, body: string) => {
    ctx.status = status;
    ctx.type = 'html';
    ctx.body = renderPage(options.name, title, body);
  };
  const currentSession = (ctx: Context) => sessions.find(ctx.cookies.get(cookieName));
  const setSessionCookie = (ctx: Context, session: Session) => ctx.cookies.set(cookieName, session.id, sessionCookieOptions(isHttps));
  const clearSessionCookie = (ctx: Context) => ctx.cookies.set(cookieName, null, sessionCookieOptions(isHttps));

  /** The state-changing routes: a signed-in session and its synchronizer token in the form, or 403. */
  async function requireCsrf(ctx: Context, next: Next) {
    const session = currentSession(ctx);
    const given = (ctx.request.body as Record<string, unknown> | undefined)?.csrf;
    if (!session || !isSameSecret(session.csrfToken, given)) {
      return page(ctx, 403, 'Request refused', '<p class="error">This form has expired or did not come from this app. Go back to the <a href="/">start page</a> and try again.</p>');
    }
    ctx.state.session = session;
    await next();
  }

  const router = new Router();

  router.get('/app.css', (ctx) => {
    ctx.type = 'text/css';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = stylesheet;
  });
  router.get('/favicon.ico', (ctx) => {
    ctx.status = 204;
  });

  router.get('/', (ctx) => {
    const session = currentSession(ctx);
    if (!session?.user) {
      return page(ctx, 200, 'Welcome', '<p id="status">You are not signed in.</p>\n<p><a class="button" id="sign-in" href="/login">Sign in with Latchkey</a></p>');
    }
    const answer = session.apiAnswer;
    session.apiAnswer = undefined;
    page(ctx, 200, 'Signed in', [
      `<p>Signed in as user <code id="sub">${escapeHtml(session.user.sub)}</code>.</p>`,
      postButton('/call-api', session.csrfToken, 'Call the API', 'call-api'),
      postButton('/logout', session.csrfToken, 'Sign out', 'logout'),
      answer ? `<h2>The API answered ${answer.status}</h2>\n<pre id="api-answer">${escapeHtml(answer.body)}</pre>` : '',
    ].join('\n'));
  });

  addSignInRoutes(router, {
    config, url, apiAudience: options.apiAudience, now, sessions, currentSession, setSessionCookie, page,
  });

  router.post('/call-api', requireCsrf, async (ctx) => {
    const session = ctx.state.session as Session;
    const accessToken = await freshAccessToken(session);
    if (!accessToken) {
      session.user = undefined;
      return ctx.redirect('/');
    }
    try {
      const response = await fetch(`${options.apiUrl}/hello`, { headers: { authorization: `Bearer ${accessToken}` } });
      session.apiAnswer = { status: response.status, body: await response.text() };
    } catch {
      session.apiAnswer = { status: 502, body: `the API at ${options.apiUrl} could not be reached` };
    }
    ctx.status = 303;
    ctx.redirect('/');
  });

  addSignOutRoutes(router, {
    config, url, clientId: options.clientId, now, sessions, requireCsrf, clearSessionCookie, page,
  });

  const app = new Koa();
  app.use(async (ctx, next) => {
    // No inline script or style anywhere; forms post here, and logout continues to Latchkey.
    ctx.set('Content-Security-Policy', `default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' ${new URL(options.issuer).origin}; base-uri 'none'; frame-ancestors 'none'`);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    if (ctx.path !== '/app.css') ctx.set('Cache-Control', 'no-store');
    await next();
  });
  app.use(bodyParser({ enableTypes: ['form'], formLimit: '16kb' }));
  app.use(router.routes());
  app.use(router.allowedMethods());
  server.on('request', app.callback());

  return {
    url,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
