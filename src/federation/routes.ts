import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import type Provider from 'oidc-provider';
import { isDatabaseUnavailable } from '../database.js';
import { createCsrf } from '../interaction/csrf.js';
import { answerUnavailable } from '../unavailable.js';
import type { SecondFactorStep } from '../mfa/sign-in-step.js';
import { useUiLocales } from '../i18n/request-language.js';
import type { Views } from '../views.js';
import type { Connections } from './connections.js';
import { renderFailure } from './failure-page.js';
import type { Attempt } from './events.js';
import type { FederatedSignIn } from './sign-in.js';

/** What the login page shows for each connection: a "Continue with <name>" button (views/login.pug). */
export type ConnectionButton = { id: string; name: string };

type InteractionDetails = Awaited<ReturnType<Provider['interactionDetails']>>;

const loginPagePath = /^\/interaction\/([^/]+)(?:\/login)?$/;

const attemptOf = (ctx: Context, details: InteractionDetails): Attempt => ({
  uid: details.uid,
  clientId: typeof details.params.client_id === 'string' ? details.params.client_id : null,
  ip: ctx.ip,
});

/**
 * The routes of a sign-in through an upstream connection:
 * - POST /interaction/:uid/federated/:connection (the login page's button, with its CSRF token) sends the browser
 *   to the upstream;
 * - GET /connections/:id/callback (the redirect URI registered at the upstream) finds the interaction by `state` and
 *   passes the response on to
 * - GET /interaction/:uid/federated/callback, which is under the interaction's path, where the browser sends
 *   oidc-provider's interaction cookie: only the browser that started the sign-in can finish it.
 * Before the interaction routes, the login page's requests get the connection buttons (`ctx.state.connections`), and
 * an authorization request with `connection=ID` goes to that upstream without showing the page (once).
 */
export function createFederationRoutes(deps: {
  provider: Provider; connections: Connections; signIn: FederatedSignIn; views: Views; csrfKey: string;
  /** Finishes the sign-in, or continues with the second factor (src/mfa/sign-in-step.ts). */
  afterFirstFactor: SecondFactorStep['afterFirstFactor'];
}): Middleware {
  const { provider, connections, signIn, views } = deps;
  const csrf = createCsrf(deps.csrfKey);
  const router = new Router();

  async function interaction(ctx: Context): Promise<InteractionDetails | undefined> {
    try {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      if (details.uid !== ctx.params.uid || details.prompt.name !== 'login') return undefined;
      useUiLocales(ctx, details.params);
      return details;
    } catch (error) {
      if (isDatabaseUnavailable(error)) throw error;
      return undefined;
    }
  }

  async function start(ctx: Context, details: InteractionDetails, connectionId: string) {
    const begun = await signIn.begin(connectionId, attemptOf(ctx, details), (details.exp ?? 0) * 1000);
    if ('failure' in begun) return renderFailure(ctx, views, begun, `/interaction/${details.uid}`);
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(begun.redirectTo);
  }

  router.use(async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      answerUnavailable(ctx, views, 'html');
    }
  });

  router.post('/interaction/:uid/federated/:connection', bodyParser({ enableTypes: ['form'], formLimit: '4kb' }), async (ctx) => {
    const details = await interaction(ctx);
    if (!details) return renderFailure(ctx, views, signIn.expired({ uid: ctx.params.uid, clientId: null, ip: ctx.ip }), null);
    if (!csrf.isValid(details.uid, (ctx.request as { body?: Record<string, unknown> }).body?.csrf)) {
      return renderFailure(ctx, views, { failure: 'state_mismatch' }, `/interaction/${details.uid}`);
    }
    await start(ctx, details, ctx.params.connection);
  });

  router.get('/connections/:id/callback', async (ctx) => {
    const located = await signIn.locate(ctx.params.id, ctx.query.state === undefined ? null : String(ctx.query.state), ctx.ip);
    if ('failure' in located) return renderFailure(ctx, views, located, null);
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`/interaction/${encodeURIComponent(located.uid)}/federated/callback?${ctx.querystring}`);
  });

  router.get('/interaction/:uid/federated/callback', async (ctx) => {
    const details = await interaction(ctx);
    if (!details) return renderFailure(ctx, views, signIn.expired({ uid: ctx.params.uid, clientId: null, ip: ctx.ip }), null);
    const done = await signIn.complete(new URLSearchParams(ctx.querystring), attemptOf(ctx, details));
    if ('failure' in done) return renderFailure(ctx, views, done, `/interaction/${details.uid}`);
    // RFC 8176 §2: "fed", a federated assertion; downstream apps see the user's usual Latchkey `sub`. A person with
    // a second factor (or an app or policy that needs one) gives it next, as after a password.
    await deps.afterFirstFactor(ctx, details, done.user, { amr: ['fed'] });
  });

  // The login page's buttons, read from the database for every page, so a connection created or deleted shows at
  // once. Requests that arrive while a read is running share it: a burst of sign-ins (400 at once in the throttle
  // test) costs one query, not one each, and does not starve the password checks of database connections.
  let reading: Promise<ConnectionButton[]> | undefined;
  const buttons = () => (reading ??= connections.list()
    .then((listed) => listed.map(({ id, name }) => ({ id, name })))
    .finally(() => {
      reading = undefined;
    }));

  const routes = router.routes();
  return async (ctx, next) => {
    const loginPage = loginPagePath.exec(ctx.path);
    if (!loginPage) return routes(ctx as never, next);
    // An unreachable database is answered by the interaction route that comes next (503).
    ctx.state.connections = await buttons().catch((error: unknown) => {
      if (isDatabaseUnavailable(error)) return [];
      throw error;
    });
    if (ctx.method === 'GET' && ctx.path === `/interaction/${loginPage[1]}`) {
      ctx.params = { uid: loginPage[1]! };
      const details = await interaction(ctx);
      const requested = details?.params.connection;
      if (details && typeof requested === 'string' && !(await signIn.hasStarted(details.uid))) return start(ctx, details, requested);
    }
    return next();
  };
}
