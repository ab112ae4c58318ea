import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExamples, type ExampleSetup } from '../support/examples.js';
import { createUser, password } from '../support/fixtures.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { launchChromium, openTab, screenshot } from '../support/chromium.js';


let server: TestServer;
let examples: ExampleSetup;
let browser: Browser;

beforeAll(async () => {
  server = await startTestServer();
  examples = await startExamples(server);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await examples?.close();
  await server?.close();
});

/**
 * What openTab records for a page that is meant to answer 400 (an error page): the failed response and Chromium's
 * console line about it. Anything beyond these two, such as a CSP violation, is a real problem.
 */
function badRequestReports(url: string): string[] {
  return [`400 for GET ${url}`, `console error on ${url}: Failed to load resource: the server responded with a status of 400 (Bad Request)`];
}

describe('single sign-on in a real browser', () => {
  it('signs in on the hosted page, consents, calls the API, gets SSO in the second app and signs out of both', async () => {
    const user = await createUser(server.services, { email: 'browser.user@example.com' });
    const [notes, calendar] = examples.apps;
    const { page, problems, close } = await openTab(browser);
    try {
      await page.goto(`${notes.url}/`);
      await page.click('#sign-in');
      await page.waitForURL(/\/interaction\//);
      expect(await page.locator('h1').textContent()).toBe('Sign in');
      await screenshot(page, 'login');
      await page.fill('#email', user.email);
      await page.fill('#password', password);
      await page.click('button:has-text("Sign in")');

      await page.waitForURL(/\/interaction\//);
      expect(await page.locator('h1').textContent()).toBe('Allow access?');
      await screenshot(page, 'consent');
      await page.click('button:has-text("Allow")');

      await page.waitForURL(`${notes.url}/`);
      expect(await page.locator('#sub').textContent()).toBe(user.id);
      await page.click('#call-api button');
      await page.waitForSelector('#api-answer');
      expect(JSON.parse((await page.locator('#api-answer').textContent())!)).toMatchObject({
        sub: user.id, email: user.email, clientId: 'notes', scope: 'read',
      });

      // Single sign-on: the second app signs the user in without a password (and, being first-party, without consent).
      await page.goto(`${calendar.url}/`);
      await page.click('#sign-in');
      await page.waitForURL(`${calendar.url}/`);
      expect(await page.locator('#sub').textContent()).toBe(user.id);

      // Sign out in the second app: Latchkey asks to confirm, then ends its session.
      await page.click('#logout button');
      await page.waitForURL(/\/session\/end/);
      await page.click('button:has-text("Yes, sign me out")');
      await page.waitForURL(`${calendar.url}/signed-out`);
      await page.goto(`${calendar.url}/`);
      expect(await page.locator('#status').textContent()).toBe('You are not signed in.');
      // Back-channel logout told the first app too.
      await page.goto(`${notes.url}/`);
      expect(await page.locator('#status').textContent()).toBe('You are not signed in.');
      await page.click('#sign-in');
      await page.waitForURL(/\/interaction\//);
      expect(await page.locator('#password').count()).toBe(1);

      await page.waitForLoadState('networkidle');
      expect(problems).toEqual([]);
    } finally {
      await close();
    }
  });

  it('shows Latchkey\'s error page, not a redirect, for an authorization request with an unregistered redirect_uri', async () => {
    const { page, problems, close } = await openTab(browser);
    try {
      const request = new URL(`${server.issuer}/auth`);
      request.search = new URLSearchParams({
        client_id: 'notes', response_type: 'code', scope: 'openid',
        redirect_uri: 'https://attacker.example.test/callback',
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
      }).toString();
      const response = await page.goto(request.href);
      // RFC 6749 §4.1.2.1: an unregistered redirect_uri is shown to the user, never redirected to.
      expect(response!.status()).toBe(400);
      expect(page.url()).toBe(request.href);
      expect(await page.locator('h1').textContent()).toBe('Something went wrong');
      expect(await page.locator('p.error[role="alert"]').textContent()).toContain('an address it has not registered');
      expect(await page.locator('.description').textContent()).toContain('redirect_uri');
      expect(await page.locator('p.detail code').textContent()).toBe('invalid_redirect_uri');
      await screenshot(page, 'error');
      await page.waitForLoadState('networkidle');
      expect(problems).toEqual(badRequestReports(request.href));
    } finally {
      await close();
    }
  });

  it('shows Latchkey\'s error page for an interaction id this browser never started', async () => {
    const { page, problems, close } = await openTab(browser);
    try {
      const unknown = `${server.issuer}/interaction/not-an-interaction`;
      const response = await page.goto(unknown);
      expect(response!.status()).toBe(400);
      expect(await page.locator('h1').textContent()).toBe('Something went wrong');
      expect(await page.locator('p.detail code').textContent()).toBe('invalid_request');
      await page.waitForLoadState('networkidle');
      expect(problems).toEqual(badRequestReports(unknown));
    } finally {
      await close();
    }
  });

  it('shows the error on the login page after a wrong password', async () => {
    const user = await createUser(server.services);
    const { page, problems, close } = await openTab(browser);
    try {
      await page.goto(`${examples.apps[0].url}/login`);
      await page.fill('#email', user.email);
      await page.fill('#password', 'not the password');
      await page.click('button:has-text("Sign in")');
      await page.waitForSelector('#login-error');
      expect(await page.locator('#login-error').textContent()).toBe('Incorrect email or password.');
      expect(await page.locator('#email').inputValue()).toBe(user.email);
      await screenshot(page, 'login-error');
      await page.waitForLoadState('networkidle');
      expect(problems).toEqual([]);
    } finally {
      await close();
    }
  });
});
