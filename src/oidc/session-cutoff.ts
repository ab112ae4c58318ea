import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { isSessionValid } from '../accounts/accounts.js';

/**
 * Two more reasons for the login prompt of an interaction policy (the one src/mfa/interaction-policy.ts builds from
 * oidc-provider's default), checked right after `no_session`, so the person is asked to sign in again
 * (`prompt=none` gets login_required):
 * - `account_unavailable`: the session's account is disabled or deleted (findAccount finds no one). Those sessions
 *   are deleted then, but a request in flight at that moment saves its session again when it finishes; without this
 *   check oidc-provider went on with no account and answered 500.
 * - `password_changed`: the session signed in before the user's password last changed (or before `users logout` or
 *   `users disable`); the same write-back must not sign anyone in to an app.
 */
export function addSessionCutoff(policy: ReturnType<typeof interactionPolicy.base>) {
  const { Check } = interactionPolicy;
  const login = policy.get('login')!;
  login.checks.add(new Check('password_changed', 'End-User authentication is required again', 'login_required', (ctx: KoaContextWithOIDC) => {
    const account = ctx.oidc.account as { sessionsValidAfter?: number | null } | undefined;
    if (!account || isSessionValid({ sessionsValidAfter: account.sessionsValidAfter ?? null }, ctx.oidc.session?.loginTs)) return Check.NO_NEED_TO_PROMPT;
    return Check.REQUEST_PROMPT;
  }), 1);
  login.checks.add(new Check('account_unavailable', 'End-User authentication is required', 'login_required', (ctx: KoaContextWithOIDC) => (
    ctx.oidc.session?.accountId && !ctx.oidc.account ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT
  )), 1);
  return policy;
}
