import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, createUser, password } from '../support/fixtures.js';
import { discoverRp } from '../support/rp.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { launchChromium, openTab, screenshot } from '../support/chromium.js';

let server: TestServer;
let browser: Browser;
let app: http.Server;
let callbackUrl: string;

beforeAll(async () => {
  // The app's redirect URI: a page that says nothing; the test redeems the code itself.
  app = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('back at the app'));
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  callbackUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}/callback`;
  [server, browser] = await Promise.all([startTestServer(), launchChromium()]);
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await new Promise<void>((resolve) => app.close(() => resolve()));
});

describe('the account chooser in a real browser', () => {
  it('offers the signed-in person, and "Use another account" signs someone else in, without a page of errors', async () => {
    const first = await createUser(server.services, { email: 'chooser.first@example.com', givenName: 'Ada', familyName: 'Lovelace' });
    const second = await createUser(server.services, { email: 'chooser.second@example.com' });
    const client = await createClient(server.services, { redirectUris: [callbackUrl] });
    const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const verifier = oidc.randomPKCECodeVerifier();
    const request = async (prompt?: string) => oidc.buildAuthorizationUrl(rp, {
      redirect_uri: callbackUrl, scope: 'openid', state: 'st', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      ...(prompt ? { prompt } : {}),
    }).href;
    const { page, problems, close } = await openTab(browser);
    try {
      await page.goto(await request());
      await page.fill('#email', first.email);
      await page.fill('#password', password);
      await page.click('button:has-text("Sign in")');
      await page.click('button:has-text("Allow")');
      await page.waitForURL(`${callbackUrl}?**`);

      await page.goto(await request('select_account'));
      expect(await page.locator('h1').textContent()).toBe('Choose an account');
      expect(await page.locator('p.account').textContent()).toContain('Ada Lovelace');
      await screenshot(page, 'select-account');
      await page.click('button:has-text("Use another account")');
      await page.waitForSelector('#password');
      expect(await page.inputValue('#email')).toBe('');
      await page.fill('#email', second.email);
      await page.fill('#password', password);
      await page.click('button:has-text("Sign in")');
      // oidc-provider's form ending the first session submits itself (its script is allowed by its CSP hash).
      await page.waitForSelector('button:has-text("Allow")');
      expect(await page.locator('p.detail').first().textContent()).toContain(`Signed in as ${second.email}`);
      await page.click('button:has-text("Allow")');
      await page.waitForURL(`${callbackUrl}?**`);
      const tokens = await oidc.authorizationCodeGrant(rp, new URL(page.url()), { pkceCodeVerifier: verifier, expectedState: 'st' });
      expect(tokens.claims()!.sub).toBe(second.id);
      await page.waitForLoadState('networkidle');
      expect(problems).toEqual([]);
    } finally {
      await close();
    }
  });
});
