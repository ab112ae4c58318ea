import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Accounts } from '../accounts/accounts.js';
import { emailShaped } from '../accounts/email.js';
import type { Lock, LoginThrottle } from '../accounts/login-throttle.js';
import type { Audit } from '../audit.js';
import type { Views } from '../views.js';
import type { Csrf } from './csrf.js';
import { formField, type InteractionDetails } from './form.js';

// One message for an unknown email, a wrong password and a disabled account: nothing tells which it was.
const failedSignIn = 'Incorrect email or password.';

function tooManyAttempts(lock: Lock): string {
  const minutes = Math.ceil(lock.retryAfterSeconds / 60);
  return `Too many attempts, try again in ${minutes} ${minutes === 1 ? 'minute' : 'minutes'}.`;
}

/** The email as typed, for the audit trail, unless it does not look like one (someone typed a password there). */
function auditedEmail(email: string): string | null {
  return emailShaped(email) ?? null;
}

export function createLogin(deps: { provider: Provider; accounts: Accounts; throttle: LoginThrottle; audit: Audit; views: Views; csrf: Csrf }) {
  const { provider, accounts, throttle, audit, views, csrf } = deps;

  async function clientName(clientId: unknown): Promise<string | undefined> {
    const client = typeof clientId === 'string' ? await provider.Client.find(clientId) : undefined;
    return client?.clientName ?? client?.clientId;
  }

  function render(ctx: Context, details: InteractionDetails, locals: { email?: string; error?: string; name?: string }) {
    ctx.type = 'html';
    ctx.body = views.render('login', {
      title: 'Sign in',
      uid: details.uid,
      csrf: csrf.tokenFor(details.uid),
      clientName: locals.name,
      email: locals.email ?? (typeof details.params.login_hint === 'string' ? details.params.login_hint : ''),
      error: locals.error,
    });
  }

  /** RFC 6585 §4: 429 with Retry-After, on the same login page, so the person knows when to come back. */
  async function refuse(ctx: Context, details: InteractionDetails, email: string, lock: Lock) {
    ctx.status = 429;
    ctx.set('Retry-After', String(lock.retryAfterSeconds));
    render(ctx, details, { email, error: tooManyAttempts(lock), name: await clientName(details.params.client_id) });
  }

  return {
    async show(ctx: Context, details: InteractionDetails) {
      render(ctx, details, { name: await clientName(details.params.client_id) });
    },

    async submit(ctx: Context, details: InteractionDetails) {
      const email = formField(ctx, 'email');
      const password = formField(ctx, 'password');
      if (!email || !password) {
        render(ctx, details, { email, error: failedSignIn, name: await clientName(details.params.client_id) });
        return;
      }
      const who = { email: auditedEmail(email), ip: ctx.ip, clientId: typeof details.params.client_id === 'string' ? details.params.client_id : null };
      const lock = await throttle.check(email, ctx.ip);
      if (lock) {
        void audit.record({ type: 'sign_in.throttled', ...who, details: { scope: lock.scope, retryAfterSeconds: lock.retryAfterSeconds } });
        await refuse(ctx, details, email, lock);
        return;
      }
      const user = await accounts.authenticate(email, password);
      if (!user) {
        const triggered = await throttle.recordFailure(email, ctx.ip);
        void audit.record({ type: 'sign_in.failure', ...who });
        if (triggered) {
          void audit.record({ type: 'sign_in.locked', ...who, details: { scope: triggered.scope, retryAfterSeconds: triggered.retryAfterSeconds } });
          await refuse(ctx, details, email, triggered);
          return;
        }
        render(ctx, details, { email, error: failedSignIn, name: await clientName(details.params.client_id) });
        return;
      }
      await throttle.recordSuccess(email, ctx.ip);
      void audit.record({ type: 'sign_in.success', ...who, accountId: user.id, email: user.email });
      const redirectTo = await provider.interactionResult(ctx.req, ctx.res, {
        login: { accountId: user.id, amr: ['pwd'] },
      }, { mergeWithLastSubmission: false });
      ctx.status = 303;
      ctx.redirect(redirectTo);
    },
  };
}
