import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { textOf, type Browser, type Page } from './browser.js';
import { redirectUri } from './rp.js';

/** The code an authenticator app shows for `secret` at `at` (epoch ms): computed by the test, no waiting. */
export const totpCode = (secret: string, at: number) => TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: at });

export const isAtCallback = (page: Page) => page.url.startsWith(redirectUri);

/** Starts code + PKCE with any extra authorization parameters (acr_values, max_age, prompt) and follows it to a page. */
export async function startAuthorization(rp: oidc.Configuration, browser: Browser, extra: Record<string, string> = {}) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: redirectUri, scope: 'openid email', state, nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256', ...extra,
  });
  const page = await browser.follow(url.href, {}, redirectUri);
  /** Redeems the code of the callback page, the ID token validated by openid-client. */
  const redeem = async (callback: Page) => oidc.authorizationCodeGrant(rp, new URL(callback.url), {
    pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  return { page, redeem };
}

export const submitPassword = (browser: Browser, page: Page, email: string, password: string) =>
  browser.submit(page, 'form[action$="/login"]', { email, password }, redirectUri);

export const submitCode = (browser: Browser, page: Page, code: string) =>
  browser.submit(page, 'form[action$="/mfa"]', { code }, redirectUri);

/** The secret shown as text on an enrolment page. */
export const shownSecret = (page: Page) => textOf(page.html, 'code.secret')!;

/** The recovery codes of a page that shows them. */
export const shownRecoveryCodes = (page: Page) => [...page.html.matchAll(/<li><code>([0-9a-z-]+)<\/code><\/li>/g)].map((match) => match[1]);
