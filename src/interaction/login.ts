import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Accounts } from '../accounts/accounts.js';
import { emailShaped } from '../accounts/email.js';
import type { Lock, LoginThrottle } from '../accounts/login-throttle.js';
import { HashingBusyError } from '../accounts/passwords.js';
import type { Audit } from '../audit.js';
import type { SecondFactorStep } from '../mfa/sign-in-step.js';
import type { Message } from '../i18n/catalogues.js';
import type { User } from '../store/users.js';
import type { Views } from '../views.js';
import type { Csrf } from './csrf.js';
import { formField, type InteractionDetails } from './form.js';

// One message for an unknown email, a wrong password and a disabled account: nothing tells which it was.
const failedSignIn = 'login.failed';

/** When a sign-in refused because hashing was busy may try again: a few hashes' time, rounded up generously. */
const busyRetryAfterSeconds = 5;

/** The message of a throttle lock, on every form that checks a secret (the login form, the second-factor pages). */
export function tooManyAttempts(lock: Lock): Message {
  return { key: 'login.too_many', params: { count: Math.ceil(lock.retryAfterSeconds / 60) } };
}

/** The email as typed, for the audit trail, unless it does not look like one (someone typed a password there). */
function auditedEmail(email: string): string | null {
  return emailShaped(email) ?? null;
}

/** REQUIRE_VERIFIED_EMAIL (recovery/email-gate.ts): shows "check your inbox" and returns true for a held person. */
export type HoldUnverified = (ctx: Context, user: User, uid: string) => Promise<boolean>;

export function createLogin(deps: {
  provider: Provider; accounts: Accounts; throttle: LoginThrottle; audit: Audit; views: Views; csrf: Csrf;
  secondFactor: Pick<SecondFactorStep, 'afterPassword'>; holdUnverified: HoldUnverified;
  /** Whether the page offers "Sign in with a passkey" (src/mfa/passkey-sign-in.ts). */
  offersPasskeys: boolean;
}) {
  const { provider, accounts, throttle, audit, views, csrf } = deps;

  async function clientName(clientId: unknown): Promise<string | undefined> {
    const client = typeof clientId === 'string' ? await provider.Client.find(clientId) : undefined;
    return client?.clientName ?? client?.clientId;
  }

  function render(ctx: Context, details: InteractionDetails, locals: { email?: string; error?: string | Message; name?: string }) {
    ctx.type = 'html';
    ctx.body = views.render('login', {
      title: 'login.title',
      uid: details.uid,
      csrf: csrf.tokenFor(details.uid),
      clientName: locals.name,
      email: locals.email ?? (typeof details.params.login_hint === 'string' ? details.params.login_hint : ''),
      error: locals.error,
      // The "Continue with …" buttons, put there by src/federation/routes.ts before this route ran.
      connections: ctx.state.connections ?? [],
      offersPasskeys: deps.offersPasskeys,
    });
  }

  /** RFC 6585 §4: 429 with Retry-After, on the same login page, so the person knows when to come back. */
  async function refuse(ctx: Context, details: InteractionDetails, email: string, lock: Lock) {
    ctx.status = 429;
    ctx.set('Retry-After', String(lock.retryAfterSeconds));
    render(ctx, details, { email, error: tooManyAttempts(lock), name: await clientName(details.params.client_id) });
  }

  return {
    /**
     * `isAnotherAccount`: the person chose "Use another account" (select-account.ts), so the app's `login_hint`,
     * which names whom the app expected, is not filled in.
     */
    async show(ctx: Context, details: InteractionDetails, options: { isAnotherAccount?: boolean } = {}) {
      render(ctx, details, { name: await clientName(details.params.client_id), ...(options.isAnotherAccount ? { email: '' } : {}) });
    },

    async submit(ctx: Context, details: InteractionDetails) {
      const email = formField(ctx, 'email');
      const password = formField(ctx, 'password');
      if (!email || !password) {
        render(ctx, details, { email, error: failedSignIn, name: await clientName(details.params.client_id) });
        return;
      }
      const who = { email: auditedEmail(email), ip: ctx.ip, clientId: typeof details.params.client_id === 'string' ? details.params.client_id : null };
      // The attempt takes its place in every throttle counter before the password is checked (see login-throttle.ts).
      const reserved = await throttle.reserve(email, ctx.ip);
      if ('lock' in reserved) {
        void audit.record({ type: 'sign_in.throttled', ...who, details: { scope: reserved.lock.scope, retryAfterSeconds: reserved.lock.retryAfterSeconds } });
        await refuse(ctx, details, email, reserved.lock);
        return;
      }
      const { attempt } = reserved;
      let user: Awaited<ReturnType<Accounts['authenticate']>>;
      try {
        user = await accounts.authenticate(email, password);
      } catch (error) {
        // No password was checked, so the attempt gives its places back (when the database cannot take them back,
        // the attempt counts: the stricter way to be wrong).
        await attempt.abandoned().catch(() => undefined);
        if (!(error instanceof HashingBusyError)) throw error;
        // RFC 9110 §15.6.4: overloaded for now; the form stays on screen with the email kept.
        ctx.status = 503;
        ctx.set('Retry-After', String(busyRetryAfterSeconds));
        render(ctx, details, { email, error: 'login.busy', name: await clientName(details.params.client_id) });
        return;
      }
      if (!user) {
        const triggered = await attempt.failed();
        void audit.record({ type: 'sign_in.failure', ...who });
        if (triggered) {
          void audit.record({ type: 'sign_in.locked', ...who, details: { scope: triggered.scope, retryAfterSeconds: triggered.retryAfterSeconds } });
          await refuse(ctx, details, email, triggered);
          return;
        }
        render(ctx, details, { email, error: failedSignIn, name: await clientName(details.params.client_id) });
        return;
      }
      // REQUIRE_VERIFIED_EMAIL: a self-registered person whose address is not verified yet sees "check your inbox".
      // Such a person has no second factor to ask for: setting one up needs a finished sign-in (or, with
      // MFA=required, happens inside one, after this point).
      if (await deps.holdUnverified(ctx, user, details.uid)) {
        await attempt.succeeded();
        return;
      }
      void audit.record({ type: 'sign_in.success', ...who, accountId: user.id, email: user.email });
      // Finishes the sign-in, or continues with the second factor (src/mfa/sign-in-step.ts), which reports the attempt.
      await deps.secondFactor.afterPassword(ctx, details, user, attempt);
    },
  };
}
