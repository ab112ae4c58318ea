import type Provider from 'oidc-provider';
import { isDatabaseUnavailable } from '../database.js';
import type { Views } from '../views.js';

export const unavailable = {
  error: 'temporarily_unavailable',
  error_description: 'Latchkey cannot reach its database right now; try again shortly.',
};

/**
 * oidc-provider answers every unexpected error with a 500 server_error and then emits `server_error`, before the
 * response is sent. An unreachable database is not a bug: the answer becomes a 503 with Retry-After (RFC 6749's
 * temporarily_unavailable). Anything else is logged, without the request, which may carry credentials.
 */
export function handleServerErrors(provider: Provider, views: Views) {
  provider.on('server_error', (ctx, error: Error) => {
    if (!isDatabaseUnavailable(error)) {
      console.error(`latchkey: server error on ${ctx.method} ${ctx.path}: ${error.stack ?? error.message}`);
      return;
    }
    if (ctx.status >= 300 && ctx.status < 400) return;
    ctx.status = 503;
    ctx.set('Retry-After', '5');
    ctx.body = ctx.response.is('html')
      ? views.render('error', { title: 'Unavailable', message: unavailable.error_description, code: unavailable.error })
      : unavailable;
  });
}
