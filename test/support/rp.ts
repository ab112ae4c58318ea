import * as oidc from 'openid-client';
import type { Browser } from './browser.js';

export const redirectUri = 'http://localhost:8765/callback';
export const postLogoutRedirectUri = 'http://localhost:8765/signed-out';

/** An openid-client relying party for a client registered at the test server. */
export async function discoverRp(issuer: string, clientId: string, clientSecret?: string): Promise<oidc.Configuration> {
  return oidc.discovery(
    new URL(issuer),
    clientId,
    clientSecret,
    clientSecret ? oidc.ClientSecretBasic(clientSecret) : oidc.None(),
    { execute: [oidc.allowInsecureRequests] },
  );
}

export type SignInOptions = {
  email: string;
  password: string;
  scope?: string;
  resource?: string;
  prompt?: string;
  /** Whether to press Allow on the consent page (true), Deny (false), or expect no consent page (undefined). */
  consent?: boolean;
  redirectUri?: string;
};

/** Starts code + PKCE, walks the real login (and consent) form and returns what the app needs to redeem the code. */
export async function authorize(rp: oidc.Configuration, browser: Browser, options: SignInOptions) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const target = options.redirectUri ?? redirectUri;
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: target,
    scope: options.scope ?? 'openid email profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...(options.resource ? { resource: options.resource } : {}),
    ...(options.prompt ? { prompt: options.prompt } : {}),
  });
  let page = await browser.follow(url.href, {}, target);
  if (page.url.includes('/interaction/') && page.html.includes('name="password"')) {
    page = await browser.submit(page, 'form[action$="/login"]', { email: options.email, password: options.password }, target);
  }
  if (options.consent !== undefined && page.url.includes('/interaction/')) {
    page = await browser.submit(page, options.consent ? 'form[action$="/confirm"]' : 'form[action$="/abort"]', {}, target);
  }
  return { page, callbackUrl: new URL(page.url), codeVerifier, state, nonce };
}

/** authorize() and then the code exchange, with ID token, state and nonce validated by openid-client. */
export async function signIn(rp: oidc.Configuration, browser: Browser, options: SignInOptions) {
  const flow = await authorize(rp, browser, options);
  if (!flow.page.url.startsWith(options.redirectUri ?? redirectUri)) {
    throw new Error(`sign-in stopped at ${flow.page.url} (${flow.page.status}): ${flow.page.html.slice(0, 400)}`);
  }
  const tokens = await oidc.authorizationCodeGrant(rp, flow.callbackUrl, {
    pkceCodeVerifier: flow.codeVerifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
    idTokenExpected: true,
  });
  return { ...flow, tokens };
}
