import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Accounts } from '../accounts/accounts.js';
import type { LoginThrottle } from '../accounts/login-throttle.js';
import { HashingBusyError } from '../accounts/passwords.js';
import type { Audit } from '../audit.js';
import type { MfaSettings } from '../config.js';
import { createCsrf } from '../interaction/csrf.js';
import { BadFormError, formField } from '../interaction/form.js';
import { tooManyAttempts } from '../interaction/login.js';
import { hostedPageMiddleware } from '../interaction/routes.js';
import type { User } from '../store/users.js';
import type { Message } from '../i18n/catalogues.js';
import type { Views } from '../views.js';
import { lastFactorMessage, mountAccountPasskeys } from './account-passkeys.js';
import type { Passkeys } from './passkeys.js';
import type { SecondFactors } from './second-factors.js';

type Deps = {
  provider: Provider; accounts: Accounts; secondFactors: SecondFactors; throttle: LoginThrottle; audit: Audit; views: Views;
  csrfKey: string; policy: MfaSettings['policy']; passkeys: Passkeys | undefined;
};

export type SignedIn = { user: User; sessionUid: string };

/**
 * /account/security: a person signed in to Latchkey sets up an authenticator app, gets new recovery codes, or
 * removes the app. Every change asks for the password again (throttled like the login form): a session cookie
 * alone, stolen or left open on a shared computer, cannot add or remove a factor. Forms carry a CSRF token bound to
 * the Latchkey session.
 */
export function createAccountSecurityRoutes(deps: Deps) {
  const { provider, accounts, secondFactors, throttle, audit, views } = deps;
  const csrf = createCsrf(deps.csrfKey);
  const issuerName = new URL(provider.issuer).host;
  const router = new Router({ prefix: '/account/security' });
  const tokenFor = (signedIn: SignedIn) => csrf.tokenFor(`account-security:${signedIn.sessionUid}`);

  /**
   * The person signed in to Latchkey in this browser (oidc-provider's session cookie), or undefined. The one place
   * that decides who is signed in here; the account page's guard can take its place.
   */
  async function signedInAccount(ctx: Context): Promise<SignedIn | undefined> {
    const session = await provider.Session.get(ctx as never);
    const user = session.accountId ? await accounts.findActive(session.accountId) : undefined;
    return user && session.uid ? { user, sessionUid: session.uid } : undefined;
  }

  function page(ctx: Context, name: string, locals: Record<string, unknown>, status = 200) {
    ctx.status = status;
    ctx.type = 'html';
    ctx.body = views.render(name, locals);
  }

  async function overview(ctx: Context, signedIn: SignedIn, notice: { error?: string | Message; message?: string | Message } = {}, status = 200) {
    const { factors, recoveryCodesLeft } = await secondFactors.list(signedIn.user.id);
    page(ctx, 'mfa/account-security', {
      title: 'mfa.security.heading', email: signedIn.user.email, recoveryCodesLeft, csrf: tokenFor(signedIn),
      totp: factors.find((factor) => factor.kind === 'totp'), passkeys: factors.filter((factor) => factor.kind === 'passkey'),
      hasFactor: factors.length > 0, offersPasskeys: deps.passkeys !== undefined, canRemove: !(await isLastNeededFactor(signedIn.user.id)), ...notice,
    }, status);
  }

  /** Whether removing one factor would leave none while MFA=required (the operator's reset is the way out then). */
  async function isLastNeededFactor(accountId: string): Promise<boolean> {
    return deps.policy === 'required' && (await secondFactors.list(accountId)).factors.length <= 1;
  }

  /** The signed-in person, with the CSRF token of a POST checked; or the "sign in first" page. */
  async function requireSignedIn(ctx: Context): Promise<SignedIn | undefined> {
    const signedIn = await signedInAccount(ctx);
    if (!signedIn) {
      page(ctx, 'mfa/signed-out', { title: 'mfa.signed_out.heading' }, 401);
      return undefined;
    }
    if (ctx.method === 'POST' && !csrf.isValid(`account-security:${signedIn.sessionUid}`, (ctx.request as { body?: Record<string, unknown> }).body?.csrf)) {
      throw new BadFormError('form.expired');
    }
    return signedIn;
  }

  /** Checks the password typed again, through the login throttle; the error to show, or undefined when it matched. */
  async function passwordProblem(ctx: Context, user: User): Promise<{ error: string | Message; status: number } | undefined> {
    const password = formField(ctx, 'password') ?? '';
    const reserved = await throttle.reserve(user.email, ctx.ip);
    if ('lock' in reserved) return { error: tooManyAttempts(reserved.lock), status: 429 };
    let matched: User | undefined;
    try {
      matched = password ? await accounts.authenticate(user.email, password) : undefined;
    } catch (error) {
      await reserved.attempt.abandoned().catch(() => undefined);
      if (error instanceof HashingBusyError) return { error: 'login.busy', status: 503 };
      throw error;
    }
    if (matched?.id !== user.id) {
      const lock = await reserved.attempt.failed();
      void audit.record({ type: 'sign_in.failure', accountId: user.id, email: user.email, ip: ctx.ip, details: { step: 'account_security' } });
      return lock ? { error: tooManyAttempts(lock), status: 429 } : { error: 'mfa.security.wrong_password', status: 400 };
    }
    await reserved.attempt.succeeded();
    return undefined;
  }

  router.use(...hostedPageMiddleware(views));

  router.get('/', async (ctx) => {
    const signedIn = await requireSignedIn(ctx);
    if (signedIn) await overview(ctx, signedIn);
  });

  // Shows a new secret (QR code and text); nothing signs in with it until a code from it is confirmed.
  router.post('/totp', async (ctx) => {
    const signedIn = await requireSignedIn(ctx);
    if (!signedIn) return;
    if ((await secondFactors.list(signedIn.user.id)).factors.some((factor) => factor.kind === 'totp')) {
      return overview(ctx, signedIn, { error: 'mfa.security.already_set_up' }, 409);
    }
    const enrolment = await secondFactors.beginTotp(signedIn.user.id, { issuer: issuerName, account: signedIn.user.email });
    page(ctx, 'mfa/enrol', { title: 'mfa.enrol.heading', ...enrolment, csrf: tokenFor(signedIn), action: '/account/security/totp/confirm', askPassword: true });
  });

  router.post('/totp/confirm', async (ctx) => {
    const signedIn = await requireSignedIn(ctx);
    if (!signedIn) return;
    const { user } = signedIn;
    const names = { issuer: issuerName, account: user.email };
    const again = async (error: string | Message, status: number) => {
      const enrolment = await secondFactors.waitingTotp(user.id, names);
      if (!enrolment) return overview(ctx, signedIn, { error: 'mfa.security.start_again' }, 409);
      page(ctx, 'mfa/enrol', { title: 'mfa.enrol.heading', ...enrolment, csrf: tokenFor(signedIn), action: '/account/security/totp/confirm', askPassword: true, error }, status);
    };
    const problem = await passwordProblem(ctx, user);
    if (problem) return again(problem.error, problem.status);
    const enrolled = await secondFactors.confirmTotp(user.id, formField(ctx, 'code') ?? '');
    if (!enrolled) return again('mfa.wrong_enrol_code', 400);
    void audit.record({ type: 'mfa.enrolled', accountId: user.id, email: user.email, ip: ctx.ip, details: { kind: 'totp', where: 'account' } });
    page(ctx, 'mfa/recovery-codes', { title: 'mfa.codes.heading', codes: enrolled.recoveryCodes });
  });

  router.post('/recovery-codes', async (ctx) => {
    const signedIn = await requireSignedIn(ctx);
    if (!signedIn) return;
    const { user } = signedIn;
    if (!(await secondFactors.hasFactor(user.id))) return overview(ctx, signedIn, { error: 'mfa.security.set_up_first' }, 409);
    const problem = await passwordProblem(ctx, user);
    if (problem) return overview(ctx, signedIn, { error: problem.error }, problem.status);
    const codes = await secondFactors.regenerateRecoveryCodes(user.id);
    void audit.record({ type: 'mfa.recovery_codes_regenerated', accountId: user.id, email: user.email, ip: ctx.ip });
    page(ctx, 'mfa/recovery-codes', { title: 'mfa.codes.heading', codes });
  });

  router.post('/totp/remove', async (ctx) => {
    const signedIn = await requireSignedIn(ctx);
    if (!signedIn) return;
    const { user } = signedIn;
    if (await isLastNeededFactor(user.id)) return overview(ctx, signedIn, { error: lastFactorMessage('totp') }, 409);
    const problem = await passwordProblem(ctx, user);
    if (problem) return overview(ctx, signedIn, { error: problem.error }, problem.status);
    if (await secondFactors.removeTotp(user.id)) {
      void audit.record({ type: 'mfa.removed', accountId: user.id, email: user.email, ip: ctx.ip, details: { kind: 'totp', actor: 'self' } });
    }
    await overview(ctx, signedIn, { message: 'mfa.security.removed' });
  });

  if (deps.passkeys) {
    mountAccountPasskeys(router, {
      passkeys: deps.passkeys, secondFactors, audit, requireSignedIn, passwordProblem, overview, isLastNeededFactor,
      showRecoveryCodes: (ctx, codes) => page(ctx, 'mfa/recovery-codes', { title: 'mfa.codes.heading', codes }),
      translate: views.translate,
    });
  }
  return router.routes();
}
