import type { Account, FindAccount } from 'oidc-provider';
import type { Accounts } from '../accounts/accounts.js';
import type { User } from '../store/users.js';

/**
 * Which claims each scope releases (OpenID Connect Core §5.4). With `openid`, every ID token says how and when the
 * person signed in: `acr`, `amr` (RFC 8176: `pwd`, `otp`, `mfa`, or `fed` through an upstream connection) and
 * `auth_time` (OpenID Connect Core §2), from the Latchkey session.
 */
export const scopeClaims = {
  openid: ['sub', 'acr', 'amr', 'auth_time'],
  email: ['email', 'email_verified'],
  // What an account holds of §5.1's profile claims; `updated_at` is when the account last changed.
  profile: ['given_name', 'family_name', 'name', 'locale', 'zoneinfo', 'updated_at'],
};

export function userClaims(user: User) {
  const name = [user.givenName, user.familyName].filter(Boolean).join(' ');
  return {
    sub: user.id,
    email: user.email,
    email_verified: user.emailVerified,
    given_name: user.givenName ?? undefined,
    family_name: user.familyName ?? undefined,
    name: name || undefined,
    locale: user.locale ?? undefined,
    zoneinfo: user.zoneinfo ?? undefined,
    // OpenID Connect Core §5.1: seconds since the epoch.
    updated_at: Math.floor(user.updatedAt / 1000),
  };
}

/**
 * Reloads the user on every use: a disabled or deleted user makes sessions, refresh tokens and opaque access
 * tokens fail at once. oidc-provider filters the claims by granted scope. `sessionsValidAfter` goes along for the
 * login prompt's check (session-cutoff.ts).
 */
export function createFindAccount(accounts: Accounts): FindAccount {
  return async (_ctx, sub): Promise<Account | undefined> => {
    const user = await accounts.findActive(sub);
    if (!user) return undefined;
    return { accountId: user.id, sessionsValidAfter: user.sessionsValidAfter ?? null, claims: () => userClaims(user) };
  };
}
