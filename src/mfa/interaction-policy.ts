import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import type { MfaSettings } from '../config.js';
import { acrValues, asksForMfa } from './requirement.js';

/** The reason oidc-provider gives for a login prompt that only a second factor can settle (step-up). */
export const stepUpReason = 'second_factor';

/**
 * Whether a fresh second factor settles the login prompt, for a session whose person has one: our own reason, and
 * oidc-provider's `max_age` (the session's sign-in is older than the app allows). OpenID Connect Core §3.1.2.1 asks
 * then for a fresh authentication; a fresh proof of a factor only the person holds is one (as GitHub's sudo mode
 * asks for), and the password again would prove no more. Every other reason needs the full sign-in: no session,
 * `prompt=login` (`login_prompt`: a fresh full sign-in, which also lets someone else sign in), the session cutoff
 * (`password_changed`), an `id_token_hint` or `claims` naming another subject, an essential `acr`.
 */
export const isSettledBySecondFactor = (reasons: string[]) =>
  reasons.length > 0 && reasons.every((reason) => reason === stepUpReason || reason === 'max_age');

/**
 * oidc-provider's default prompts with one more check on `login`: a session signed in without a second factor is
 * sent back to the interaction when the app needs one — MFA=required, a client registered with --require-mfa, or
 * `acr_values` naming urn:latchkey:acr:mfa (for a person who has a factor; without one acr_values is voluntary).
 * The interaction then asks only for the second factor (src/mfa/sign-in-step.ts), not for the password again; so
 * does a session older than the app's `max_age` (isSettledBySecondFactor).
 * When the interaction has just finished (`result.login`), the check stands aside, as oidc-provider's own max_age
 * check does, so a sign-in that could not reach mfa is not asked again in a loop.
 */
export function createInteractionPolicy(deps: { policy: MfaSettings['policy']; hasFactor: (accountId: string) => Promise<boolean> }) {
  const { Check, base } = interactionPolicy;
  const policy = base();
  policy.get('login')!.checks.add(new Check(stepUpReason, 'a second factor is required', async (ctx: KoaContextWithOIDC) => {
    const { oidc } = ctx;
    const accountId = oidc.session?.accountId;
    if (!accountId || oidc.result?.login || oidc.session?.acr === acrValues.mfa) return Check.NO_NEED_TO_PROMPT;
    const isRequired = deps.policy === 'required' || oidc.client?.['require_mfa'] === true;
    if (isRequired) return Check.REQUEST_PROMPT;
    if (asksForMfa(oidc.params?.acr_values) && await deps.hasFactor(accountId)) return Check.REQUEST_PROMPT;
    return Check.NO_NEED_TO_PROMPT;
  }));
  return policy;
}
