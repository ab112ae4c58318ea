import * as oidc from 'openid-client';
import type { Browser, Page } from './browser.js';
import { redirectUri } from './rp.js';

/**
 * An app's sign-in that leaves Latchkey through a connection: from the app's authorization request, the button on
 * Latchkey's login page (or `connection=ID` straight away), then the upstream's own login form when it shows one.
 * Returns the page where it stopped (the app's redirect URI, or a page that said no) and the app's checks.
 */
export async function federatedAuthorize(rp: oidc.Configuration, browser: Browser, options: {
  connection: string; upstreamIssuer: string; email?: string; password?: string; direct?: boolean; extra?: Record<string, string>;
}) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: redirectUri, scope: 'openid email profile', state, nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
    ...(options.direct ? { connection: options.connection } : {}), ...options.extra,
  });
  let page: Page = await browser.follow(url.href, {}, redirectUri);
  if (!options.direct && page.url.includes('/interaction/') && !page.url.startsWith(options.upstreamIssuer)) {
    page = await browser.submit(page, `form[action$="/federated/${options.connection}"]`, {}, redirectUri);
  }
  if (page.url.startsWith(`${options.upstreamIssuer}/interaction/`) && page.html.includes('name="password"')) {
    page = await browser.submit(page, 'form[action$="/login"]', { email: options.email ?? '', password: options.password ?? '' }, redirectUri);
  }
  return { page, codeVerifier, state, nonce, callbackUrl: new URL(page.url) };
}

/** federatedAuthorize and the app's code exchange (openid-client validates Latchkey's ID token). */
export async function federatedSignIn(rp: oidc.Configuration, browser: Browser, options: Parameters<typeof federatedAuthorize>[2]) {
  const flow = await federatedAuthorize(rp, browser, options);
  if (!flow.page.url.startsWith(redirectUri)) throw new Error(`sign-in stopped at ${flow.page.url} (${flow.page.status}): ${flow.page.html.slice(0, 600)}`);
  const tokens = await oidc.authorizationCodeGrant(rp, flow.callbackUrl, {
    pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce, idTokenExpected: true,
  });
  return { ...flow, tokens, claims: tokens.claims()! };
}
