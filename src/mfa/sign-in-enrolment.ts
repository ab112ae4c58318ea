import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Audit } from '../audit.js';
import { formField, type InteractionDetails } from '../interaction/form.js';
import type { Message } from '../i18n/catalogues.js';
import type { User } from '../store/users.js';
import type { Views } from '../views.js';
import { passkeyLabel, type Passkeys } from './passkeys.js';
import type { SecondFactors } from './second-factors.js';

type LoadDetails = (ctx: Context, expectedPrompt?: string) => Promise<InteractionDetails>;

/** What the second step of signing in shares with its enrolment routes (src/mfa/sign-in-step.ts). */
type SignInStep = {
  secondFactors: SecondFactors;
  passkeys: Passkeys | undefined;
  audit: Audit;
  views: Views;
  /** The person who passed the password in this interaction and has no factor yet; anyone else is refused. */
  requireEnrolling(details: InteractionDetails): Promise<{ user: User; amr: string[] }>;
  /** The enrolment page again (there is no factor yet), with what went wrong. */
  render(ctx: Context, details: InteractionDetails, user: User, locals: { error: string | Message; status?: number }): Promise<void>;
  /** Finishes the sign-in with the first factor's `amr` and the new factor's use; where the browser continues. */
  finishWith(ctx: Context, accountId: string, amr: string[], use: 'otp' | 'passkey'): Promise<string>;
};

/**
 * Setting up a first second factor inside a sign-in (MFA=required, or an app registered with --require-mfa, for
 * someone who has none): an authenticator app (a code from the new secret proves it was saved), or, where the
 * issuer can have passkeys, a passkey (the browser's ceremony; its challenge is single-use and bound to this
 * interaction). Only the person who passed the password in this interaction may enrol, and only while they have no
 * factor, so a session cookie alone never adds a factor and reaches `mfa`. The new factor finishes the sign-in
 * (`amr` pwd + otp or pop + mfa); first the recovery codes are shown once, as after the first factor on
 * /account/security, passkey or app alike: a lost phone or laptop must not lock the person out.
 */
export function mountSignInEnrolment(router: Router, loadDetails: LoadDetails, step: SignInStep) {
  const { secondFactors, passkeys, audit, views } = step;

  /** Audits the new factor, finishes the sign-in with it, and shows the recovery codes with the way on to the app. */
  async function showCodesAndContinue(ctx: Context, enrolling: { user: User; amr: string[] }, use: 'otp' | 'passkey', codes: string[], passkeyId?: string) {
    const { user, amr } = enrolling;
    void audit.record({
      type: 'mfa.enrolled', accountId: user.id, email: user.email, ip: ctx.ip,
      details: { kind: use === 'otp' ? 'totp' : 'passkey', where: 'sign_in', ...(passkeyId ? { passkeyId } : {}) },
    });
    const continueTo = await step.finishWith(ctx, user.id, amr, use);
    ctx.type = 'html';
    ctx.body = views.render('mfa/recovery-codes', { title: 'mfa.codes.heading', codes, continueTo });
  }

  router.post('/mfa/enrol', async (ctx) => {
    const details = await loadDetails(ctx, 'login');
    const enrolling = await step.requireEnrolling(details);
    const enrolled = await secondFactors.confirmTotp(enrolling.user.id, formField(ctx, 'code') ?? '');
    if (!enrolled) return step.render(ctx, details, enrolling.user, { error: 'mfa.wrong_enrol_code' });
    await showCodesAndContinue(ctx, enrolling, 'otp', enrolled.recoveryCodes);
  });

  if (!passkeys) return;

  // Answers JSON for public/passkeys.js; a refusal is the hosted error page, which the script reports as expired.
  router.post('/mfa/enrol/passkey/options', async (ctx) => {
    const details = await loadDetails(ctx, 'login');
    const { user } = await step.requireEnrolling(details);
    ctx.body = { options: await passkeys.registrationOptions('enrol-in-sign-in', details.uid, user) };
  });

  // No name is asked for here, to keep the sign-in short: the default one can be changed on /account/security.
  router.post('/mfa/enrol/passkey', async (ctx) => {
    const details = await loadDetails(ctx, 'login');
    const enrolling = await step.requireEnrolling(details);
    const added = await passkeys.register('enrol-in-sign-in', details.uid, enrolling.user, formField(ctx, 'response'), passkeyLabel(undefined));
    if (added === 'duplicate') return step.render(ctx, details, enrolling.user, { error: 'mfa.passkey.duplicate', status: 409 });
    if (!added) return step.render(ctx, details, enrolling.user, { error: 'mfa.passkey.not_added', status: 400 });
    const codes = await secondFactors.regenerateRecoveryCodes(enrolling.user.id);
    await showCodesAndContinue(ctx, enrolling, 'passkey', codes, added.id);
  });
}
