import type { Context, Next } from 'koa';
import type { Refuse } from '../issuer-origin.js';

/**
 * OpenID Connect Core §3.1.2.1 (and RP-Initiated Logout §2): the authorization and end-session endpoints take
 * GET and POST. oidc-provider serves POST only with a `SameSite=None` session cookie, since a cross-site POST does
 * not carry a `SameSite=Lax` one; Latchkey keeps `Lax` and answers a form-encoded POST to `paths` with a 303 to
 * the same endpoint with the parameters in the query. The browser follows it as a top-level GET, which carries the
 * session cookie, so a signed-in person is not asked to sign in again (docs/conformance.md, docs/security.md).
 * The body's size is bounded before this runs (anonymous-requests.ts).
 */
export function redirectPostsToGet(deps: { paths: string[]; refuse: Refuse }) {
  const paths = new Set(deps.paths);
  return async (ctx: Context, next: Next) => {
    if (ctx.method !== 'POST' || !paths.has(ctx.path)) return next();
    const hasBody = (ctx.request.length ?? 0) > 0;
    if (hasBody && !ctx.is('application/x-www-form-urlencoded')) {
      deps.refuse(ctx, 400, { error: 'invalid_request', error_description: 'Send the parameters form-encoded (application/x-www-form-urlencoded).' });
      return;
    }
    if (ctx.querystring) {
      deps.refuse(ctx, 400, { error: 'invalid_request', error_description: 'Send the parameters either in the query (GET) or in the body (POST), not both.' });
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
    const parameters = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    // Relative to the request's own URL, so a path prefix added by a proxy is kept.
    const endpoint = ctx.path.slice(ctx.path.lastIndexOf('/') + 1);
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`${endpoint}?${parameters.toString()}`);
  };
}
