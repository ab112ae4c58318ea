import type { Context } from 'koa';
import type { Views } from '../views.js';
import type { Failure, FailureReason } from './events.js';

/**
 * The status of each failure; its sentence is `federation.failure.<reason>` in locales/, with the connection's
 * `{name}` and the `{email}` it gave. Where telling more would say which accounts exist or are disabled, the
 * sentence is the generic one (`account_disabled`).
 */
const statuses: Record<FailureReason, number> = {
  unknown_connection: 400, state_mismatch: 400, interaction_expired: 400, cancelled: 200, upstream_error: 502,
  upstream_unavailable: 504, connection_misconfigured: 503, invalid_response: 502, account_disabled: 403, no_email: 403,
  email_domain: 403, no_account: 403, link_disabled: 403, email_not_verified: 403, local_email_not_verified: 403, email_taken: 403,
};

/**
 * A federated sign-in that did not sign anyone in ends here: a readable page with the reason, a 4xx/5xx status (200
 * for a cancellation), and a way back to the sign-in page while the interaction lives.
 */
export function renderFailure(ctx: Context, views: Views, failure: Failure, backTo: string | null): void {
  ctx.status = statuses[failure.failure];
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = views.render('federation/failed', {
    title: 'federation.failed.heading',
    message: `federation.failure.${failure.failure}`,
    name: failure.connection?.name,
    email: failure.email,
    code: failure.failure,
    backTo,
  });
}
