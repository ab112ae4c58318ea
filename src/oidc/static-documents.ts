import type { Context, Next } from 'koa';
import { answerWithEtag, etagOf } from '../conditional-get.js';

type Cached = { body: string; type: string; etag: string };

/**
 * Discovery and the JWKS change only when the provider is rebuilt (a key rotation builds a new one), yet oidc-provider
 * assembles and serialises them on every request. This middleware, created with each provider, lets oidc-provider
 * answer the first GET, keeps that body serialised once, and serves it from then on with an ETag (If-None-Match → 304)
 * and CORS open to any origin. Preflights and every other request still go to oidc-provider.
 * The cache is keyed by path alone, which is right only because nothing in these answers comes from the request:
 * every URL in them derives from the issuer (issuer-origin.ts), and CORS is `*` rather than the caller's Origin
 * echoed, so every client and every cache in between gets the same bytes (no credentials are involved).
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
      cached = { body, type: ctx.response.get('Content-Type'), etag: etagOf(body) };
      cache.set(ctx.path, cached);
    }
    ctx.remove('Vary');
    ctx.set('Access-Control-Allow-Origin', '*');
    ctx.set('Cache-Control', `public, max-age=${document.maxAgeSeconds}`);
    ctx.type = cached.type;
    answerWithEtag(ctx, cached.etag, cached.body);
  };
}
