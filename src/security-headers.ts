import type { Context, Next } from 'koa';

/**
 * The Content-Security-Policy of every response. The hosted pages load one stylesheet and, on the passkey pages, two
 * scripts from Latchkey itself; nothing inline, nothing from elsewhere. oidc-provider's form_post response page adds the hash of its one
 * auto-submit script to `script-src` (which is why that directive is `'self'` and not `'none'`, which may not be
 * combined with a hash). There is deliberately no `form-action`: browsers apply it to the redirects that follow a
 * form submission, and the login, consent and logout forms end in a redirect to the app's registered URI.
 */
export const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  // public/passkeys.js asks Latchkey itself for a ceremony's options (fetch); nothing else may be contacted.
  "connect-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

// One year, as the HSTS preload list asks; no includeSubDomains: the operator's other hosts are not ours to pin.
const strictTransportSecurity = 'max-age=31536000';

/**
 * Headers for every response, set before oidc-provider or our routes run:
 * - CSP (above) and X-Frame-Options: no other site may frame the login page (clickjacking).
 * - Referrer-Policy no-referrer: the URLs here carry state, codes and interaction ids.
 * - X-Content-Type-Options nosniff.
 * - With an https issuer, HSTS on every response, and a request that did not come over https (as Koa sees it:
 *   TLS on the socket, or X-Forwarded-Proto from a trusted proxy) is refused: Latchkey's cookies would otherwise
 *   travel in clear text, and without the Secure flag. `/healthz` stays open to plain-HTTP load-balancer probes.
 */
export function securityHeaders(options: { isHttpsIssuer: boolean }) {
  return async (ctx: Context, next: Next) => {
    ctx.set('Content-Security-Policy', contentSecurityPolicy);
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('X-Content-Type-Options', 'nosniff');
    if (options.isHttpsIssuer) {
      ctx.set('Strict-Transport-Security', strictTransportSecurity);
      if (!ctx.secure && ctx.path !== '/healthz') {
        ctx.status = 403;
        ctx.type = 'text/plain';
        ctx.body = 'HTTPS required: this Latchkey is served at an https issuer. Behind a TLS-terminating proxy, set TRUST_PROXY=true and have the proxy send X-Forwarded-Proto.\n';
        return;
      }
    }
    await next();
  };
}
