import type { Context } from 'koa';
import type { Views } from '../views.js';
import type { Failure, FailureReason } from './events.js';

type Page = { status: number; message: (name: string, email: string) => string };

// One generic sentence where telling more would say which accounts exist or are disabled.
const generic = (name: string) => `Latchkey could not sign you in with ${name}.`;

const pages: Record<FailureReason, Page> = {
  unknown_connection: { status: 400, message: () => 'This way of signing in is not available (any more). Choose another on the sign-in page.' },
  state_mismatch: { status: 400, message: () => 'This sign-in response does not belong to a sign-in started in this browser, or was already used. Start again from the sign-in page.' },
  interaction_expired: { status: 400, message: () => 'This sign-in has expired or was started in another browser. Go back to the application and sign in again.' },
  cancelled: { status: 200, message: (name) => `Signing in with ${name} was cancelled.` },
  upstream_error: { status: 502, message: (name) => `${name} reported an error, so you are not signed in.` },
  upstream_unavailable: { status: 504, message: (name) => `${name} did not answer in time. Try again in a few minutes, or sign in another way.` },
  connection_misconfigured: { status: 503, message: (name) => `Signing in with ${name} is not set up correctly here. Tell an administrator, or sign in another way.` },
  invalid_response: { status: 502, message: (name) => `The answer from ${name} could not be verified, so you are not signed in.` },
  account_disabled: { status: 403, message: generic },
  no_email: { status: 403, message: (name) => `${name} did not share your email address, which Latchkey needs to sign you in.` },
  email_domain: { status: 403, message: (name) => `Only accounts with a verified email in the allowed domains may sign in with ${name} here.` },
  no_account: { status: 403, message: (_name, email) => `There is no account for ${email} here. Ask an administrator to create one.` },
  link_disabled: {
    status: 403,
    message: (name, email) => `An account for ${email} already exists here, and it is not connected to ${name}. Sign in the way you usually do.`,
  },
  email_not_verified: {
    status: 403,
    message: (name, email) => `An account for ${email} already exists here. ${name} has not confirmed that this email is yours, so it was not connected.`,
  },
  local_email_not_verified: {
    status: 403,
    message: (name, email) => `An account for ${email} exists here, but its email has not been confirmed, so it was not connected to ${name}. Ask an administrator.`,
  },
  email_taken: { status: 403, message: (_name, email) => `The email ${email} belongs to, or looks like, another account here, so no account was created.` },
};

/**
 * A federated sign-in that did not sign anyone in ends here: a readable page with the reason, a 4xx/5xx status (200
 * for a cancellation), and a way back to the sign-in page while the interaction lives.
 */
export function renderFailure(ctx: Context, views: Views, failure: Failure, backTo: string | null): void {
  const page = pages[failure.failure];
  ctx.status = page.status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = views.render('federation/failed', {
    title: 'Sign-in not completed',
    message: page.message(failure.connection?.name ?? 'the other provider', failure.email ?? 'this email'),
    code: failure.failure,
    backTo,
  });
}
