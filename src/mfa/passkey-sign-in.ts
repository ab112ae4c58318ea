import type Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Accounts } from '../accounts/accounts.js';
import type { Audit } from '../audit.js';
import { BadFormError, formField, type InteractionDetails } from '../interaction/form.js';
import type { User } from '../store/users.js';
import { passkeyAmr, type PasskeyAssertion, type Passkeys } from './passkeys.js';
import { acrValues } from './requirement.js';

type LoadDetails = (ctx: Context, expectedPrompt?: string) => Promise<InteractionDetails>;

/**
 * A signature counter that did not go up (WebAuthn §6.1.1): perhaps a cloned authenticator, perhaps a synced passkey
 * used on two devices. Reported as an audit event for the operator; the sign-in is not refused, or everyone with a
 * synced passkey whose counter misbehaves would be locked out.
 */
export function auditCounterRegression(audit: Audit, ctx: Context, user: Pick<User, 'id' | 'email'>, assertion: PasskeyAssertion) {
  void audit.record({
    type: 'mfa.passkey_counter_regressed', accountId: user.id, email: user.email, ip: ctx.ip,
    details: { passkeyId: assertion.passkey.id, storedCount: assertion.passkey.signCount },
  });
}

/**
 * RFC 8176 `amr` of a passkey-first sign-in: proof of possession of the key (`pop`) and `mfa`, because the
 * authenticator verified the person (PIN or biometric, user verification required) before it signed: something
 * they have and something they know or are (docs/mfa.md).
 */
export const passkeyFirstAmr = [passkeyAmr, 'mfa'];

/**
 * "Sign in with a passkey" on the login page (passkey-first): the options, bound to this interaction, and the
 * assertion, which signs the person in on its own with `acr` mfa. Nothing here when the issuer cannot have passkeys.
 */
export function createPasskeySignIn(deps: { provider: Provider; accounts: Accounts; audit: Audit; passkeys: Passkeys | undefined }) {
  const { provider, accounts, audit, passkeys } = deps;
  return {
    isOffered: passkeys !== undefined,

    mount(router: Router, loadDetails: LoadDetails) {
      if (!passkeys) return;
      router.post('/passkey/options', async (ctx) => {
        const details = await loadDetails(ctx, 'login');
        ctx.body = { options: await passkeys.authenticationOptions('sign-in', details.uid) };
      });

      router.post('/passkey', async (ctx) => {
        const details = await loadDetails(ctx, 'login');
        const clientId = typeof details.params.client_id === 'string' ? details.params.client_id : null;
        const assertion = await passkeys.authenticate('sign-in', details.uid, formField(ctx, 'response'));
        const user = assertion?.isUserVerified ? await accounts.findActive(assertion.passkey.accountId) : undefined;
        if (!assertion || !user) {
          void audit.record({ type: 'sign_in.failure', accountId: assertion?.passkey.accountId ?? null, ip: ctx.ip, clientId, details: { method: 'passkey' } });
          throw new BadFormError('mfa.passkey.sign_in_failed');
        }
        if (assertion.isCounterRegressed) auditCounterRegression(audit, ctx, user, assertion);
        void audit.record({ type: 'sign_in.success', accountId: user.id, email: user.email, ip: ctx.ip, clientId, details: { method: 'passkey' } });
        const redirectTo = await provider.interactionResult(ctx.req, ctx.res, {
          login: { accountId: user.id, amr: passkeyFirstAmr, acr: acrValues.mfa },
        }, { mergeWithLastSubmission: false });
        ctx.status = 303;
        ctx.redirect(redirectTo);
      });
    },
  };
}
