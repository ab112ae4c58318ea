import type Koa from 'koa';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import { isDatabaseUnavailable } from '../database.js';
import { answerUnavailable } from '../unavailable.js';
import type { Views } from '../views.js';

/** What a client did to its own connection (hung up, sent a malformed request), not a fault of Latchkey's. */
function isClientFault(error: Error & { status?: number; expose?: boolean; code?: string }): boolean {
  return error.expose === true || (error.status !== undefined && error.status < 500)
    || ['ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE'].includes(error.code ?? '') || /^HPE_/.test(error.code ?? '');
}

/**
 * oidc-provider answers every unexpected error with a 500 server_error and then emits `server_error`, before the
 * response is sent. An unreachable database is not a bug: the answer becomes a 503 with Retry-After (RFC 6749's
 * temporarily_unavailable). Anything else is logged, without the request, which may carry credentials.
 * Koa's own `error` event (a response stream that failed, a client that hung up) goes to the same log instead of
 * Koa's default, which prints stack traces to stderr for whatever a client sends.
 */
export function handleServerErrors(provider: Provider, views: Views, logger: Logger) {
  provider.on('server_error', (ctx, error: Error) => {
    if (!isDatabaseUnavailable(error)) {
      logger.error({ event: 'server_error', method: ctx.method, path: ctx.path, err: error.message, stack: error.stack }, 'server error');
      return;
    }
    if (ctx.status >= 300 && ctx.status < 400) return;
    answerUnavailable(ctx, views, ctx.response.is('html') ? 'html' : 'json');
  });

  // The provider is a Koa app; its typings list only oidc-provider's own events.
  (provider as unknown as Koa).on('error', (error: Error, ctx?: Koa.Context) => {
    const fields = { event: 'http_error', method: ctx?.method, path: ctx?.path, err: error.message };
    if (isClientFault(error)) logger.debug(fields, 'request ended by the client');
    else logger.error({ ...fields, stack: error.stack }, 'server error');
  });
}
