import type Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Accounts } from '../accounts/accounts.js';
import type { Attempt, LoginThrottle } from '../accounts/login-throttle.js';
import type { Audit } from '../audit.js';
import type { MfaSettings } from '../config.js';
import type { Csrf } from '../interaction/csrf.js';
import { BadFormError, formField, type InteractionDetails } from '../interaction/form.js';
import { tooManyAttempts } from '../interaction/login.js';
import type { User } from '../store/users.js';
import type { Message } from '../i18n/catalogues.js';
import type { Views } from '../views.js';
import { isSettledBySecondFactor } from './interaction-policy.js';
import { acrValues, secondFactorNeed } from './requirement.js';
import { auditCounterRegression } from './passkey-sign-in.js';
import { passkeyAmr, type Passkeys } from './passkeys.js';
import type { FactorUse, SecondFactors } from './second-factors.js';
import { mountSignInEnrolment } from './sign-in-enrolment.js';

/** Who passed the password step of this interaction; kept in the interaction (server side) until the factor is given. */
type Pending = { accountId: string; amr: string[] };
const pendingKey = 'latchkeySecondFactor';

const wrongCode = 'mfa.wrong_code';
const wrongPasskey = 'mfa.wrong_passkey';

/**
 * RFC 8176 `amr` after a second factor: the first factor's (or, in a step-up, the session's) methods, then `otp` for
 * an authenticator code or `pop` for a passkey (see passkeys.ts) — a recovery code has no registered value, so it
 * adds none — and last `mfa`: two factors (the first and something only the person holds) were used.
 */
const factorAmr: Record<FactorUse, string[]> = { otp: ['otp'], passkey: [passkeyAmr], recovery_code: [] };
const amrWith = (amr: string[], use: FactorUse) => [...new Set([...amr.filter((method) => method !== 'mfa'), ...factorAmr[use], 'mfa'])];

export type SecondFactorStep = ReturnType<typeof createSecondFactorStep>;
type LoadDetails = (ctx: Context, expectedPrompt?: string) => Promise<InteractionDetails>;

/**
 * The second step of signing in (docs/mfa.md): after a correct password, or for a session whose person has a factor
 * when the app needs more than the session has (step-up: a second factor, or a sign-in more recent than `max_age`),
 * the person gives a passkey, a code from their authenticator app or a recovery code, or, when a factor is required
 * and they have none, enrols one here first (sign-in-enrolment.ts).
 *
 * Guessing codes is throttled by the login throttle, with the same counters as passwords (account + IP). A correct
 * password does not clear those counters when a factor follows (it gives back its own place, see afterPassword):
 * otherwise signing in again with the password would wipe out every wrong code. When the counters lock, the login
 * form refuses before any password is checked, with the same page for a right and a wrong password.
 */
export function createSecondFactorStep(deps: {
  provider: Provider; accounts: Accounts; secondFactors: SecondFactors; throttle: LoginThrottle; audit: Audit; views: Views; csrf: Csrf;
  policy: MfaSettings['policy']; issuer: string; passkeys: Passkeys | undefined;
}) {
  const { provider, accounts, secondFactors, throttle, audit, views, csrf, passkeys } = deps;
  const issuerName = new URL(deps.issuer).host;

  async function clientOf(details: InteractionDetails) {
    const clientId = details.params.client_id;
    return typeof clientId === 'string' ? provider.Client.find(clientId) : undefined;
  }

  /**
   * The person this interaction is proving a second factor for: the one who just passed the password here, or the
   * one signed in to this browser when a fresh second factor settles the login prompt (step-up: a second factor
   * missing, or the sign-in older than `max_age`; see isSettledBySecondFactor) and they have a factor. A step-up can
   * only *give* a factor the person has: enrolling one needs the password in this interaction, so a session cookie
   * alone (stolen, or left open) can never add a factor and reach `mfa`.
   */
  async function subjectOf(details: InteractionDetails): Promise<{ user: User; amr: string[]; mayEnrol: boolean } | undefined> {
    const pending = (details.result as Record<string, Pending> | undefined)?.[pendingKey];
    const session = details.session as { accountId?: string; amr?: string[] } | undefined;
    const isStepUp = !!session?.accountId && isSettledBySecondFactor(details.prompt.reasons);
    const accountId = pending?.accountId ?? (isStepUp ? session!.accountId : undefined);
    const user = accountId ? await accounts.findActive(accountId) : undefined;
    if (!user) return undefined;
    if (!pending && !(await secondFactors.hasFactor(user.id))) return undefined;
    return { user, amr: pending?.amr ?? session?.amr ?? ['pwd'], mayEnrol: !!pending };
  }

  async function finish(ctx: Context, accountId: string, amr: string[]): Promise<string> {
    return provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId, amr, acr: amr.includes('mfa') ? acrValues.mfa : acrValues.password },
    }, { mergeWithLastSubmission: false });
  }

  async function render(ctx: Context, details: InteractionDetails, user: User, locals: { error?: string | Message; status?: number } = {}) {
    ctx.status = locals.status ?? 200;
    ctx.type = 'html';
    const client = await clientOf(details);
    const common = { uid: details.uid, csrf: csrf.tokenFor(details.uid), clientName: client?.clientName ?? client?.clientId, error: locals.error };
    const { factors } = await secondFactors.list(user.id);
    if (factors.length > 0) {
      const hasPasskey = !!passkeys && factors.some((factor) => factor.kind === 'passkey');
      ctx.body = views.render('mfa/verify', { title: 'mfa.verify.heading', ...common, hasPasskey, hasTotp: factors.some((factor) => factor.kind === 'totp') });
      return;
    }
    const names = { issuer: issuerName, account: user.email };
    const enrolment = await secondFactors.waitingTotp(user.id, names) ?? await secondFactors.beginTotp(user.id, names);
    const action = `/interaction/${details.uid}/mfa/enrol`;
    const passkeyEnrolment = passkeys ? { action: `${action}/passkey`, options: `${action}/passkey/options` } : undefined;
    ctx.body = views.render('mfa/enrol', { title: 'mfa.enrol.heading', ...common, ...enrolment, action, passkeyEnrolment });
  }

  async function requireSubject(details: InteractionDetails) {
    const subject = await subjectOf(details);
    if (!subject) throw new BadFormError('mfa.no_step_waiting');
    return subject;
  }

  /**
   * After the first factor of a sign-in (the password, or an upstream connection's `fed`): finishes it, or continues
   * with the second factor when the person has one or the policy needs one. `attempt`: the password's place in the
   * login throttle, reported here.
   */
  async function afterFirstFactor(ctx: Context, details: InteractionDetails, user: User, first: { amr: string[]; attempt?: Attempt }): Promise<void> {
    const client = await clientOf(details);
    const need = secondFactorNeed({
      hasFactor: await secondFactors.hasFactor(user.id), policy: deps.policy, clientRequiresMfa: client?.['require_mfa'] === true,
    });
    if (need === 'none') {
      await first.attempt?.succeeded();
      ctx.status = 303;
      ctx.redirect(await finish(ctx, user.id, first.amr));
      return;
    }
    // The password's own place in the counters is given back, but the account + IP failures are not forgotten
    // until the second factor is given too.
    await first.attempt?.abandoned();
    details.result = { [pendingKey]: { accountId: user.id, amr: first.amr } satisfies Pending };
    await details.persist();
    ctx.status = 303;
    ctx.redirect(`/interaction/${details.uid}/mfa`);
  }

  /**
   * Checks a second factor with `check`, through the login throttle (the same counters as passwords), and finishes
   * the sign-in with it, or shows the factor page again with `wrong`.
   */
  async function prove(ctx: Context, details: InteractionDetails, check: (user: User) => Promise<FactorUse | undefined>, wrong: string) {
    const { user, amr } = await requireSubject(details);
    const who = { accountId: user.id, email: user.email, ip: ctx.ip, clientId: typeof details.params.client_id === 'string' ? details.params.client_id : null };
    const reserved = await throttle.reserve(user.email, ctx.ip);
    if ('lock' in reserved) {
      void audit.record({ type: 'sign_in.throttled', ...who, details: { step: 'second_factor', scope: reserved.lock.scope } });
      ctx.set('Retry-After', String(reserved.lock.retryAfterSeconds));
      await render(ctx, details, user, { status: 429, error: tooManyAttempts(reserved.lock) });
      return;
    }
    const use = await check(user);
    if (!use) {
      const lock = await reserved.attempt.failed();
      void audit.record({ type: 'sign_in.second_factor_failure', ...who });
      if (lock) {
        void audit.record({ type: 'sign_in.locked', ...who, details: { step: 'second_factor', scope: lock.scope } });
        ctx.set('Retry-After', String(lock.retryAfterSeconds));
        await render(ctx, details, user, { status: 429, error: tooManyAttempts(lock) });
        return;
      }
      await render(ctx, details, user, { error: wrong });
      return;
    }
    await reserved.attempt.succeeded();
    void audit.record({ type: 'sign_in.second_factor_success', ...who, details: { factor: use } });
    ctx.status = 303;
    ctx.redirect(await finish(ctx, user.id, amrWith(amr, use)));
  }

  return {
    afterFirstFactor,

    /**
     * The login form's success path (login.ts): finish now, or keep who passed the password in the interaction and
     * send the browser to the second step.
     */
    async afterPassword(ctx: Context, details: InteractionDetails, user: User, attempt: Attempt): Promise<void> {
      await afterFirstFactor(ctx, details, user, { amr: ['pwd'], attempt });
    },

    /** For a login prompt that only a second factor can settle (step-up): the factor page instead of the password. */
    async showStepUp(ctx: Context, details: InteractionDetails): Promise<boolean> {
      const subject = await subjectOf(details);
      if (!subject || subject.mayEnrol) return false;
      await render(ctx, details, subject.user);
      return true;
    },

    /** The routes of the step, under the interaction router (its CSRF check, error page and body parser). */
    mount(router: Router, loadDetails: LoadDetails) {
      router.get('/mfa', async (ctx) => {
        const details = await loadDetails(ctx, 'login');
        await render(ctx, details, (await requireSubject(details)).user);
      });

      router.post('/mfa', async (ctx) => {
        const details = await loadDetails(ctx, 'login');
        await prove(ctx, details, (user) => secondFactors.verify(user.id, formField(ctx, 'code') ?? ''), wrongCode);
      });

      if (passkeys) {
        // The passkey as the second factor: options for the account's own passkeys, then the assertion.
        router.post('/mfa/passkey/options', async (ctx) => {
          const details = await loadDetails(ctx, 'login');
          const { user } = await requireSubject(details);
          ctx.body = { options: await passkeys.authenticationOptions('second-factor', details.uid, user.id) };
        });
        router.post('/mfa/passkey', async (ctx) => {
          const details = await loadDetails(ctx, 'login');
          await prove(ctx, details, async (user) => {
            const assertion = await passkeys.authenticate('second-factor', details.uid, formField(ctx, 'response'), user.id);
            if (assertion?.isCounterRegressed) auditCounterRegression(audit, ctx, user, assertion);
            return assertion ? 'passkey' : undefined;
          }, wrongPasskey);
        });
      }

      mountSignInEnrolment(router, loadDetails, {
        secondFactors, passkeys, audit, views, render,
        async requireEnrolling(details) {
          const { user, amr, mayEnrol } = await requireSubject(details);
          if (!mayEnrol || await secondFactors.hasFactor(user.id)) throw new BadFormError('mfa.already_set_up');
          return { user, amr };
        },
        finishWith: (ctx, accountId, amr, use) => finish(ctx, accountId, amrWith(amr, use)),
      });
    },
  };
}
