import * as oidc from 'openid-client';
import type { Browser, Page } from './browser.js';
import { redirectUri } from './rp.js';

/**
 * One authorization request with any parameters, as the OpenID Foundation's conformance modules send them: code
 * flow with S256 PKCE, `state` and `nonce` (unless `parameters` says otherwise, an empty string leaving one out).
 * Walks the login page when it is shown (`login`) and presses Allow when consent is asked; returns the pages seen.
 */
export async function authorizeWith(
  rp: oidc.Configuration,
  browser: Browser,
  parameters: Record<string, string>,
  login?: { email: string; password: string },
) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const all: Record<string, string> = {
    redirect_uri: redirectUri,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state: oidc.randomState(),
    nonce: oidc.randomNonce(),
    ...parameters,
  };
  const sent = Object.fromEntries(Object.entries(all).filter(([, value]) => value !== ''));
  const url = oidc.buildAuthorizationUrl(rp, sent);
  const pages: Page[] = [];
  let page = await browser.follow(url.href, {}, redirectUri);
  if (page.html.includes('name="password"')) {
    pages.push(page);
    if (login) page = await browser.submit(page, 'form[action$="/login"]', login, redirectUri);
  }
  if (page.url.includes('/interaction/') && page.html.includes('action="') && page.html.includes('/confirm')) {
    pages.push(page);
    page = await browser.submit(page, 'form[action$="/confirm"]', {}, redirectUri);
  }
  const callbackUrl = new URL(page.url);
  return { page, pages, callbackUrl, codeVerifier, sent, loginShown: pages.some((shown) => shown.html.includes('name="password"')) };
}

/** The code exchange of `authorizeWith`, with state, nonce and the ID token checked by openid-client. */
export async function redeem(rp: oidc.Configuration, flow: Awaited<ReturnType<typeof authorizeWith>>, extra: { maxAge?: number } = {}) {
  return oidc.authorizationCodeGrant(rp, flow.callbackUrl, {
    pkceCodeVerifier: flow.codeVerifier,
    expectedState: flow.sent.state ?? oidc.skipStateCheck,
    expectedNonce: flow.sent.nonce,
    idTokenExpected: true,
    ...(extra.maxAge === undefined ? {} : { maxAge: extra.maxAge }),
  });
}
