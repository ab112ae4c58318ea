import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import * as oidc from 'openid-client';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, createUser, password } from '../support/fixtures.js';
import { discoverRp } from '../support/rp.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { chromiumPath } from './install-chromium.js';

const artifactsDir = path.resolve('test-artifacts');
let server: TestServer;
let browser: Browser;
let rp: oidc.Configuration;
/** The app's redirect URI: a real listener that answers a blank page, so the browser lands and the test reads the code. */
let app: http.Server;
let redirectUri: string;

beforeAll(async () => {
  fs.mkdirSync(artifactsDir, { recursive: true });
  server = await startTestServer();
  app = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<p>app</p>'));
  await new Promise<void>((resolve) => app.listen(0, 'localhost', resolve));
  redirectUri = `http://localhost:${(app.address() as AddressInfo).port}/callback`;
  const client = await createClient(server.services, { skipConsent: true, redirectUris: [redirectUri] });
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  app?.close();
});

/**
 * A tab with Chromium's virtual authenticator (Chrome DevTools Protocol, WebAuthn domain): a platform authenticator
 * holding discoverable credentials that verifies the user on every request, as a phone's or laptop's screen lock
 * does. It records console errors, uncaught exceptions, CSP violations and failed loads.
 */
async function openTab(): Promise<{ context: BrowserContext; page: Page; problems: string[]; autofill: { isOn: boolean }; close(): Promise<void> }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const problems: string[] = [];
  // Chromium's virtual authenticator answers a conditional (autofill) request at once, where a person would pick
  // the passkey from the email field's suggestions. While `autofill.isOn` is false the tab says it has no autofill
  // for passkeys (as many browsers do), so the page waits for the button or the password.
  const autofill = { isOn: false };
  await context.exposeBinding('isPasskeyAutofillOn', () => autofill.isOn);
  await context.addInitScript(() => {
    const credential = window.PublicKeyCredential as unknown as { isConditionalMediationAvailable?: () => Promise<boolean> };
    if (credential) credential.isConditionalMediationAvailable = () => (window as unknown as { isPasskeyAutofillOn(): Promise<boolean> }).isPasskeyAutofillOn();
  });
  await context.exposeBinding('reportCspViolation', ({ page }, violation: string) => {
    problems.push(`CSP violation on ${page.url()}: ${violation}`);
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      (window as unknown as { reportCspViolation(v: string): void }).reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI}`);
    });
  });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error on ${page.url()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`uncaught error on ${page.url()}: ${error.message}`));
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} for ${response.request().method()} ${response.url()}`);
  });
  return { context, page, problems, autofill, close: () => context.close() };
}

/**
 * Starts code + PKCE in the tab (prompt=login: the login page even with a session) at `relyingParty`'s Latchkey, and
 * returns how to redeem.
 */
async function startSignIn(page: Page, extra: Record<string, string> = {}, relyingParty = rp) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(relyingParty, {
    redirect_uri: redirectUri, scope: 'openid email', state, nonce, prompt: 'login',
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256', ...extra,
  });
  await page.goto(url.href);
  return async () => {
    await page.waitForURL((current) => current.href.startsWith(redirectUri));
    const tokens = await oidc.authorizationCodeGrant(relyingParty, new URL(page.url()), {
      pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
    });
    return tokens.claims()!;
  };
}

async function signInWithPassword(page: Page, email: string) {
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('button:has-text("Sign in")');
}

describe('passkeys in a real browser (virtual authenticator)', () => {
  it('enrols a passkey on the account page, signs in with it alone, uses it after the password, and removes it', async () => {
    const user = await createUser(server.services, { email: 'passkey.browser@example.com' });
    const { page, problems, autofill, close } = await openTab();
    try {
      // A password sign-in first, then the account page.
      const redeemFirst = await startSignIn(page);
      await signInWithPassword(page, user.email);
      expect(await redeemFirst()).toMatchObject({ amr: ['pwd'] });
      await page.goto(`${server.issuer}/account/security`);
      await page.fill('#passkey-name', 'Work laptop');
      await page.fill('#password-passkey', password);
      await page.screenshot({ path: path.join(artifactsDir, 'passkeys-account.png'), fullPage: true });
      await page.click('button:has-text("Add a passkey")');
      // The first factor comes with recovery codes.
      await page.waitForSelector('h1:has-text("Your recovery codes")');
      await page.goto(`${server.issuer}/account/security`);
      expect(await page.locator('.passkey-item').textContent()).toContain('Work laptop');

      // Passkey-first: one button, no email, no password; acr mfa.
      const redeemPasskey = await startSignIn(page);
      await page.waitForSelector('form.passkey:not([hidden])');
      await page.screenshot({ path: path.join(artifactsDir, 'passkeys-login.png'), fullPage: true });
      await page.click('button:has-text("Sign in with a passkey")');
      expect(await redeemPasskey()).toMatchObject({ sub: user.id, amr: ['pop', 'mfa'], acr: 'urn:latchkey:acr:mfa' });

      // Passkey-first from the email field's autofill (conditional mediation): the page starts it on its own.
      autofill.isOn = true;
      const redeemAutofill = await startSignIn(page);
      expect(await redeemAutofill()).toMatchObject({ sub: user.id, amr: ['pop', 'mfa'], acr: 'urn:latchkey:acr:mfa' });
      autofill.isOn = false;

      // The password, then the passkey as the second factor.
      const redeemSecond = await startSignIn(page);
      await signInWithPassword(page, user.email);
      await page.waitForSelector('h1:has-text("Two-step sign-in")');
      await page.click('button:has-text("Use your passkey")');
      expect(await redeemSecond()).toMatchObject({ sub: user.id, amr: ['pwd', 'pop', 'mfa'], acr: 'urn:latchkey:acr:mfa' });

      // Renamed, then removed with the password.
      await page.goto(`${server.issuer}/account/security`);
      await page.fill('.passkey-item input[name="name"]', 'Old laptop');
      await page.click('.passkey-item button:has-text("Rename")');
      await page.waitForSelector('.notice:has-text("renamed")');
      expect(await page.locator('.passkey-item strong').textContent()).toBe('Old laptop');
      await page.fill('.passkey-item input[name="password"]', password);
      await page.click('.passkey-item button:has-text("Remove this passkey")');
      await page.waitForSelector('.notice:has-text("removed")');
      expect(await page.locator('.passkey-item').count()).toBe(0);
      expect((await server.services.secondFactors.list(user.id))).toEqual({ factors: [], recoveryCodesLeft: 0 });

      // The password alone signs in again.
      const redeemAfter = await startSignIn(page);
      await signInWithPassword(page, user.email);
      expect(await redeemAfter()).toMatchObject({ amr: ['pwd'] });
      await page.waitForLoadState('networkidle');
      expect(problems).toEqual([]);
    } finally {
      await close();
    }
  });

  it('refuses a captured real assertion when it is replayed, and in another interaction', async () => {
    const user = await createUser(server.services, { email: 'passkey.replay@example.com' });
    const { context, page, close } = await openTab();
    try {
      const redeemFirst = await startSignIn(page);
      await signInWithPassword(page, user.email);
      await redeemFirst();
      await page.goto(`${server.issuer}/account/security`);
      await page.fill('#password-passkey', password);
      await page.click('button:has-text("Add a passkey")');
      await page.waitForSelector('h1:has-text("Your recovery codes")');

      // Interaction A: the authenticator signs A's challenge; the form's POST is held back and kept.
      await startSignIn(page);
      const interactionA = page.url();
      let captured: { url: string; body: string } | undefined;
      await page.route('**/interaction/*/passkey', async (route) => {
        captured = { url: route.request().url(), body: route.request().postData()! };
        await route.abort();
      });
      await page.click('button:has-text("Sign in with a passkey")');
      await expect.poll(() => captured).toBeDefined();
      await page.unroute('**/interaction/*/passkey');
      const post = (url: string, body: string) => context.request.post(url, {
        data: body, headers: { 'content-type': 'application/x-www-form-urlencoded' }, maxRedirects: 0,
      });

      // Interaction B in the same browser: A's assertion (with B's own CSRF token) is refused there.
      await startSignIn(page);
      const interactionB = page.url();
      expect(interactionB).not.toBe(interactionA);
      const csrfB = await page.locator('form.passkey input[name="csrf"]').getAttribute('value');
      const inB = new URLSearchParams(captured!.body);
      inB.set('csrf', csrfB!);
      const refusedInB = await post(`${interactionB}/passkey`, inB.toString());
      expect(refusedInB.status()).toBe(400);
      expect(await refusedInB.text()).toContain('could not sign you in');

      // In A it works once; the same assertion again is a replay of a used challenge.
      const accepted = await post(captured!.url, captured!.body);
      expect(accepted.status()).toBe(303);
      const replayed = await post(captured!.url, captured!.body);
      expect(replayed.status()).toBe(400);
    } finally {
      await close();
    }
  });
});

describe('a passkey set up inside the sign-in (MFA=required)', () => {
  let required: TestServer;
  let requiredRp: oidc.Configuration;
  beforeAll(async () => {
    required = await startTestServer({ mfa: { policy: 'required', totpDriftSteps: 1, passkeyTimeoutSeconds: 300 } });
    const client = await createClient(required.services, { skipConsent: true, redirectUris: [redirectUri] });
    requiredRp = await discoverRp(required.issuer, client.clientId, client.clientSecret!);
  });
  afterAll(() => required?.close());

  it('adds a passkey on the setup page after the password, reaches the app with pop and mfa, and asks for it next time', async () => {
    const user = await createUser(required.services, { email: 'passkey.onboarding@example.com' });
    const { page, problems, close } = await openTab();
    try {
      const redeemFirst = await startSignIn(page, {}, requiredRp);
      await signInWithPassword(page, user.email);
      await page.waitForSelector('h1:has-text("Set up two-step sign-in")');
      await page.waitForSelector('form.passkey:not([hidden])');
      await page.screenshot({ path: path.join(artifactsDir, 'passkeys-onboarding.png'), fullPage: true });
      await page.click('button:has-text("Add a passkey")');
      // The first factor comes with recovery codes, then the sign-in goes on to the app.
      await page.waitForSelector('h1:has-text("Your recovery codes")');
      await page.click('a:has-text("I have saved them, continue")');
      expect(await redeemFirst()).toMatchObject({ sub: user.id, amr: ['pwd', 'pop', 'mfa'], acr: 'urn:latchkey:acr:mfa' });
      expect(await required.services.secondFactors.list(user.id)).toMatchObject({ factors: [{ kind: 'passkey', label: 'Passkey' }], recoveryCodesLeft: 10 });

      // The next sign-in: the password, then the new passkey as the second factor.
      const redeemNext = await startSignIn(page, {}, requiredRp);
      await signInWithPassword(page, user.email);
      await page.waitForSelector('h1:has-text("Two-step sign-in")');
      await page.click('button:has-text("Use your passkey")');
      expect(await redeemNext()).toMatchObject({ sub: user.id, amr: ['pwd', 'pop', 'mfa'], acr: 'urn:latchkey:acr:mfa' });
      await page.waitForLoadState('networkidle');
      expect(problems).toEqual([]);
    } finally {
      await close();
    }
  });
});
