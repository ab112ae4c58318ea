import type Koa from 'koa';
import type { Context, Next } from 'koa';
import type { Message } from './i18n/catalogues.js';

/** Answers a request refused before oidc-provider reads it (see `createProviderPages().refuse`). */
export type Refuse = (ctx: Context, status: number, out: { error: string; error_description: string }, link?: string, message?: Message) => void;

/** RFC 9110 §7.2 Host: a registered name or IPv4 address, or a bracketed IPv6 literal, and an optional port. */
const hostSyntax = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/** The path and query of a request target: origin-form as it is, absolute-form's own; anything else is `/`. */
function pathAndQuery(target: string): string {
  if (target.startsWith('/')) return target;
  try {
    const url = new URL(target);
    return `${url.pathname}${url.search}`;
  } catch {
    return '/';
  }
}

/**
 * oidc-provider builds every URL it publishes or redirects to (discovery, `Location`, form actions, the interaction's
 * return address) as `new URL(path, ctx.href)`, and Koa builds `href` from the Host header, from X-Forwarded-Host when
 * `app.proxy` is on, or from the request target itself when it is in absolute form. Here the app's request prototype
 * (one per Koa app) answers `host`, `hostname`, `href` and `URL` from the issuer instead, so no URL can be built from
 * the request (OpenID Connect Discovery 1.0 §4.3: the issuer in the document is the one the client asked; RFC 8414 §3).
 * `protocol` and `secure` still come from the transport: the https check and the cookies' Secure flag need them.
 * Koa's `origin` is the Origin request header, not a URL of ours, and stays as it is.
 */
export function bindRequestsToIssuer(app: Koa, issuer: string): void {
  const { origin, host, hostname } = new URL(issuer);
  Object.defineProperties(app.request, {
    host: { get: () => host, configurable: true },
    hostname: { get: () => hostname, configurable: true },
    href: {
      get(this: Koa.Request) {
        return `${origin}${pathAndQuery(this.originalUrl)}`;
      },
      configurable: true,
    },
    URL: {
      get(this: Koa.Request) {
        return new URL(this.href);
      },
      configurable: true,
    },
  });
}

/**
 * The first middleware: a request addressed to another host than the issuer's is refused before anything reads it,
 * so nothing Latchkey answers (and no cache in front of it) can vary with the name a client used.
 * - Origin-form (`GET /auth`): the Host header must be the issuer's host (the default port may be spelled out).
 *   A missing or malformed one is a 400 (RFC 9112 §3.2); another host, 421 Misdirected Request (RFC 9110 §15.5.20),
 *   with the issuer's address, so someone who opened 127.0.0.1 instead of localhost knows where to go.
 * - Absolute-form (`GET http://host/auth`): the target names the host and Host is ignored (RFC 9112 §3.2.2), so the
 *   target's origin must be the issuer's.
 * - X-Forwarded-Host is never read: behind a proxy, the proxy must pass Host on unchanged.
 * `openPaths` answer on any host: they build no URL (the health check, which load balancers probe by address).
 */
export function refuseOtherHosts(deps: { issuer: string; openPaths: string[]; refuse: Refuse }) {
  const issuer = new URL(deps.issuer);
  const defaultPort = issuer.protocol === 'https:' ? ':443' : ':80';
  const openPaths = new Set(deps.openPaths);

  /** The origin the request was addressed to, or null when the request does not say so in a well-formed way. */
  function addressedOrigin(ctx: Context): { origin: string; host: string } | null {
    const target = ctx.req.url ?? '';
    if (!target.startsWith('/') && target !== '*') {
      try {
        const url = new URL(target);
        return url.username || url.password ? null : { origin: url.origin, host: url.host };
      } catch {
        return null;
      }
    }
    const raw = ctx.req.headers.host ?? '';
    if (!hostSyntax.test(raw)) return null;
    const spelled = raw.toLowerCase();
    const host = spelled.endsWith(defaultPort) ? spelled.slice(0, -defaultPort.length) : spelled;
    return { origin: `${issuer.protocol}//${host}`, host };
  }

  return async (ctx: Context, next: Next) => {
    if (openPaths.has(ctx.path)) return next();
    const addressed = addressedOrigin(ctx);
    if (!addressed) {
      deps.refuse(ctx, 400, { error: 'invalid_request', error_description: 'The request has a missing or malformed Host header.' }, undefined, { key: 'error.bad_host' });
      return;
    }
    if (addressed.origin !== issuer.origin) {
      // Only an address on the issuer's origin is offered: the path is appended as text, never resolved as a URL.
      const link = ctx.method === 'GET' || ctx.method === 'HEAD' ? `${issuer.origin}${pathAndQuery(ctx.originalUrl)}` : undefined;
      deps.refuse(ctx, 421, {
        error: 'invalid_request',
        error_description: `This Latchkey is served at ${issuer.origin} only, not at ${addressed.host}.`,
      }, link, { key: 'error.other_host', params: { issuer: issuer.origin, host: addressed.host } });
      return;
    }
    await next();
  };
}
