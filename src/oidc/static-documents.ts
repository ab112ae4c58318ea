import type http from 'node:http';
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { answerWithEtag, etagOf } from '../conditional-get.js';

type Cached = { body: string; type: string; etag: string };
/** A whole 200 answer as it left the server (every middleware's headers included), to send again as it is. */
type Recorded = { headers: http.OutgoingHttpHeaders; body: string };

export type StaticDocumentOptions = {
  /** Path → how long caches may keep the document. */
  documents: Record<string, { maxAgeSeconds: number }>;
  issuer: string;
  /** Koa's `app.proxy` (TRUST_PROXY): whether X-Forwarded-Proto may say the request came over https. */
  trustsProxy: boolean;
};

/**
 * Discovery and the JWKS change only when the provider is rebuilt (a key rotation builds a new one), yet oidc-provider
 * assembles and serialises them on every request. `middleware` lets oidc-provider answer the first GET, keeps that
 * body serialised once, and serves it from then on with an ETag (If-None-Match → 304) and CORS open to any origin.
 * Preflights and every other request still go to oidc-provider.
 * The cache is keyed by path alone, which is right only because nothing in these answers comes from the request:
 * every URL in them derives from the issuer (issuer-origin.ts), and CORS is `*` rather than the caller's Origin
 * echoed, so every client and every cache in between gets the same bytes (no credentials are involved).
 *
 * `answer` goes one step further, in front of Koa (`answerInFrontOfKoa`): the documents are what every client
 * and every resource server fetches, and most of their cost was Koa's context and the middleware in front of this
 * one. It sends again, byte for byte, the whole answer (status, every header) the middleware stack gave to an
 * earlier request of the same plain kind, and nothing else: a GET in origin form for exactly the document's path,
 * with the issuer's own Host, without conditional headers, and, for an https issuer, over https as Koa would see it
 * (TLS, or X-Forwarded-Proto: https from a trusted proxy). Any other request (HEAD, a query, another spelling of the
 * host, If-None-Match) goes through the whole stack, which decides as it always did; so does the first of each kind.
 * A middleware added in front of this one that sets a header per request (an id, a cookie) would have it sent again
 * to everyone: such a header must be set in server.ts instead, or these documents left out of it.
 */
export function createStaticDocuments(options: StaticDocumentOptions) {
  const { documents } = options;
  const issuer = new URL(options.issuer);
  const isHttpsIssuer = issuer.protocol === 'https:';
  const cache = new Map<string, Cached>();
  const recorded = new Map<string, Recorded>();

  function isPlainRequest(req: http.IncomingMessage): boolean {
    const { headers } = req;
    if (req.method !== 'GET' || headers.host !== issuer.host || headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined) return false;
    if (!isHttpsIssuer || (req.socket as { encrypted?: boolean }).encrypted) return true;
    return options.trustsProxy && headers['x-forwarded-proto'] === 'https';
  }

  async function middleware(ctx: Context, next: Next) {
    const document = documents[ctx.path];
    if (!document || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    let cached = cache.get(ctx.path);
    // Only an answer served from the cache is recorded: the first one went through oidc-provider, which adds headers.
    const isFromCache = cached !== undefined;
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
    const { req, res } = ctx;
    const { body } = cached;
    if (isFromCache && ctx.status === 200 && req.url === ctx.path && isPlainRequest(req) && !recorded.has(ctx.path)) {
      res.once('finish', () => {
        // A cookie is never sent again to someone else; nothing in front of this middleware sets one here today.
        if (res.statusCode === 200 && !res.hasHeader('set-cookie')) recorded.set(ctx.path, { headers: res.getHeaders(), body });
      });
    }
  }

  /** Answers a plain GET of a document from the recorded answer; false when the request must go through Koa. */
  function answer(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const hit = recorded.get(req.url ?? '');
    if (!hit || !isPlainRequest(req)) return false;
    res.writeHead(200, hit.headers).end(hit.body);
    return true;
  }

  return { middleware, answer };
}

/**
 * Makes the provider's request handler (Koa's `callback()`, which server.ts serves) offer each request to `answer`
 * before Koa sees it. Each provider built gets its own, so a key rotation's new provider starts with nothing recorded.
 */
export function answerInFrontOfKoa(provider: Provider, answer: (req: http.IncomingMessage, res: http.ServerResponse) => boolean): void {
  const koaCallback = provider.callback.bind(provider);
  const answered = Promise.resolve();
  provider.callback = () => {
    const handle = koaCallback();
    // Koa's handler type also admits HTTP/2 requests; Latchkey serves node:http only (server.ts).
    return (req, res) => (answer(req as http.IncomingMessage, res as http.ServerResponse) ? answered : handle(req, res));
  };
}
