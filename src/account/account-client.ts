import { randomBytes } from 'node:crypto';

/**
 * The account pages sign people in the way every app does: an authorization request of Latchkey's own first-party
 * client, through the hosted login (with its throttle and everything else the login does). The client is static
 * (oidc-provider's `clients` configuration): it is not in the clients table, and its id has a character the
 * registry refuses in client ids, so no registered app can take or shadow it.
 */
export const accountClientId = 'latchkey:account';

/** Where the sign-in comes back to; it only sends the browser on to the account page it started from. */
export const signedInPath = '/account/signed-in';

/** The account pages a sign-in may return to (the `state` of the request): local paths only, never a URL. */
const returnPaths = /^\/account(\/[a-z-]+)*$/;

export function returnPath(state: unknown): string {
  return typeof state === 'string' && returnPaths.test(state) ? state : '/account';
}

/** The client's metadata as oidc-provider validates it; `skip_consent`: nothing to agree to for one's own account. */
export function accountClient(issuer: string) {
  return {
    client_id: accountClientId,
    client_name: 'Your Latchkey account',
    application_type: 'web' as const,
    redirect_uris: [`${issuer}${signedInPath}`],
    grant_types: ['authorization_code'],
    response_types: ['code' as const],
    token_endpoint_auth_method: 'none' as const,
    skip_consent: true,
  };
}

/**
 * The authorization request that signs a person in (again, with `prompt=login`) and returns to `path`. What the
 * account pages need is the Latchkey session the login establishes, not tokens: the code that comes back is never
 * redeemed. Its PKCE challenge is random bytes with no known verifier, so nobody can redeem it either; it expires
 * unused after 60 seconds.
 */
export function signInUrl(issuer: string, path: string, options: { prompt?: 'login' } = {}): string {
  const url = new URL('/auth', issuer);
  url.search = new URLSearchParams({
    client_id: accountClientId,
    response_type: 'code',
    scope: 'openid',
    redirect_uri: `${issuer}${signedInPath}`,
    code_challenge: randomBytes(32).toString('base64url'),
    code_challenge_method: 'S256',
    state: returnPath(path),
    ...(options.prompt ? { prompt: options.prompt } : {}),
  }).toString();
  return url.href;
}
