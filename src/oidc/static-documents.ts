import { createHash } from 'node:crypto';
import type { Context, Next } from 'koa';

type Cached = { body: string; type: string; etag: string };

/**
 * Discovery and the JWKS change only when the provider is rebuilt (a key rotation builds a new one), yet oidc-provider
 * assembles and serialises them on every request. This middleware, created with each provider, lets oidc-provider
 * answer the first GET, keeps that body serialised once, and serves it from then on with an ETag (If-None-Match → 304)
 * and the same CORS answer oidc-provider gives these public documents (any origin, `Vary: Origin`). Preflights and
 * every other request still go to oidc-provider.
 */
export function serveStaticDocuments(documents: Record<string, { maxAgeSeconds: number }>) {
  const cache = new Map<string, Cached>();
  return async (ctx: Context, next: Next) => {
    const document = documents[ctx.path];
    if (!document || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    let cached = cache.get(ctx.path);
    if (!cached) {
      await next();
      if (ctx.status !== 200 || ctx.body === null || typeof ctx.body !== 'object' || Buffer.isBuffer(ctx.body)) return;
      const body = JSON.stringify(ctx.body);
      cached = { body, type: ctx.response.get('Content-Type'), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
      cache.set(ctx.path, cached);
    }
    ctx.vary('Origin');
    ctx.set('Access-Control-Allow-Origin', ctx.get('Origin') || '*');
    ctx.set('Cache-Control', `public, max-age=${document.maxAgeSeconds}`);
    ctx.etag = cached.etag;
    ctx.type = cached.type;
    ctx.status = 200; // ctx.fresh compares validators only for a 2xx response
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    ctx.body = cached.body;
  };
}
