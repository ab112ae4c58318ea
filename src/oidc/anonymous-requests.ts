import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { Refuse } from '../issuer-origin.js';

/**
 * The routes where a request from nobody in particular makes oidc-provider store what it sent: an authorization
 * request stores an Interaction (its parameters, for the sign-in that follows), a pushed one a
 * PushedAuthorizationRequest (a public client authenticates with its id alone), an end-session request a Session
 * (its `state`, post-logout URI and form secret, until the logout is confirmed), a device authorization request a
 * DeviceCode (a public client again), the device page a Session (its form secret).
 */
export function anonymousWriteRoutes(provider: Provider): string[] {
  return ['authorization', 'pushed_authorization_request', 'end_session', 'device_authorization', 'code_verification']
    .map((route) => provider.pathFor(route));
}

/**
 * Bounds what one anonymous request can make Latchkey store: the query string and the body of a request to `paths`
 * together may take at most `maxBytes`, checked before anything is read or written. A body without a Content-Length
 * (chunked) is refused with 411 (RFC 9110 §15.5.12), since its size is only known once it has been read.
 */
export function limitAnonymousRequests(deps: { paths: string[]; maxBytes: number; refuse: Refuse }) {
  const paths = new Set(deps.paths);
  return async (ctx: Context, next: Next) => {
    if (!paths.has(ctx.path)) return next();
    const hasBody = ctx.method === 'POST';
    if (hasBody && ctx.request.length === undefined && ctx.get('Transfer-Encoding')) {
      deps.refuse(ctx, 411, { error: 'invalid_request', error_description: 'Send the parameters with a Content-Length.' });
      return;
    }
    const bytes = ctx.querystring.length + (hasBody ? ctx.request.length ?? 0 : 0);
    if (bytes > deps.maxBytes) {
      deps.refuse(ctx, 400, {
        error: 'invalid_request',
        error_description: `The request's parameters take ${bytes} bytes; at most ${deps.maxBytes} are accepted.`,
      });
      return;
    }
    await next();
  };
}
