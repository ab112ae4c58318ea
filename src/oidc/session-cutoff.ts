import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { isSessionValid } from '../accounts/accounts.js';

/**
 * One more reason for the login prompt of an interaction policy (the one src/mfa/interaction-policy.ts builds from
 * oidc-provider's default): the session signed in before
 * the user's password last changed (or before `users logout`). Those sessions are deleted then, but a request in
 * flight at that moment saves its session again when it finishes; such a session must not sign anyone in to an app.
 * It is checked right after `no_session`, so the person is asked to sign in again (`prompt=none` gets
 * login_required).
 */
export function addSessionCutoff(policy: ReturnType<typeof interactionPolicy.base>) {
  const { Check } = interactionPolicy;
  policy.get('login')!.checks.add(new Check('password_changed', 'End-User authentication is required again', (ctx: KoaContextWithOIDC) => {
    const account = ctx.oidc.account as { sessionsValidAfter?: number | null } | undefined;
    if (!account || isSessionValid({ sessionsValidAfter: account.sessionsValidAfter ?? null }, ctx.oidc.session?.loginTs)) return Check.NO_NEED_TO_PROMPT;
    return Check.REQUEST_PROMPT;
  }), 1);
  return policy;
}
