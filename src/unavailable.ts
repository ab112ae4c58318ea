import type { Context } from 'koa';
import type { Views } from './views.js';

/** RFC 6749 §4.1.2.1 temporarily_unavailable: the answer whenever the database cannot be reached. */
export const unavailable = {
  error: 'temporarily_unavailable',
  error_description: 'Latchkey cannot reach its database right now; try again shortly.',
};

/** How long a client is asked to wait before trying again (RFC 9110 §10.2.3). */
const retryAfterSeconds = 5;

/**
 * The one answer for an unreachable database, wherever it is noticed: 503 Service Unavailable with Retry-After,
 * never stored by a cache, as OAuth error JSON or as the error page. An outage is not a bug: no stack trace, no 500.
 */
export function answerUnavailable(ctx: Context, views: Views, format: 'html' | 'json') {
  ctx.status = 503;
  ctx.set('Retry-After', String(retryAfterSeconds));
  ctx.set('Cache-Control', 'no-store');
  if (format === 'json') {
    ctx.body = unavailable;
    return;
  }
  ctx.type = 'html';
  ctx.body = views.render('error', { title: 'error.unavailable_title', message: 'error.unavailable', code: unavailable.error });
}
