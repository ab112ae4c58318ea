import path from 'node:path';
import type { Browser } from 'playwright-core';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceCodeGrantType } from '../../src/registry/client-rules.js';
import { createClient, createUser, password } from '../support/fixtures.js';
import { discoverRp } from '../support/rp.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { artifactsDir, launchChromium, openTab, viewports } from '../support/chromium.js';

let server: TestServer;
let browser: Browser;
let rp: oidc.Configuration;

beforeAll(async () => {
  server = await startTestServer();
  const client = await createClient(server.services, {
    name: 'Living Room TV', isPublic: true, redirectUris: [], postLogoutRedirectUris: [], grantTypes: [deviceCodeGrantType],
  });
  rp = await discoverRp(server.issuer, client.clientId);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('the device page in a real browser', () => {
  it('enters the code, confirms the app, signs in, allows, and shows success; the device gets its tokens', async () => {
    const user = await createUser(server.services, { email: 'tv.owner@example.com' });
    const authorization = await oidc.initiateDeviceAuthorization(rp, { scope: 'openid email' });
    const polling = oidc.pollDeviceAuthorizationGrant(rp, authorization);
    const { page, problems, close } = await openTab(browser, viewports.phone);
    try {
      await page.goto(authorization.verification_uri);
      expect(await page.locator('h1').textContent()).toBe('Connect a device');
      await page.screenshot({ path: path.join(artifactsDir, 'device-enter-phone.png'), fullPage: true });
      await page.fill('#user_code', authorization.user_code.toLowerCase().replace('-', ''));
      await page.click('button:has-text("Continue")');

      await page.waitForSelector('.warning');
      expect(await page.locator('h1').textContent()).toContain('Living Room TV');
      expect(await page.locator('.warning').textContent()).toContain('on a device you own');
      expect(await page.locator('.user-code-shown').textContent()).toBe(authorization.user_code);
      await page.screenshot({ path: path.join(artifactsDir, 'device-confirm-phone.png'), fullPage: true });
      await page.click('#device-confirm button');

      await page.waitForURL(/\/interaction\//);
      await page.fill('#email', user.email);
      await page.fill('#password', password);
      await page.click('button:has-text("Sign in")');
      await page.waitForURL(/\/interaction\//);
      expect(await page.locator('h1').textContent()).toBe('Allow access?');
      await page.click('button:has-text("Allow")');

      await page.waitForSelector('#device-success');
      expect(await page.locator('h1').textContent()).toBe('Device connected');
      await page.screenshot({ path: path.join(artifactsDir, 'device-success-phone.png'), fullPage: true });
      const tokens = await polling;
      expect(tokens.claims()?.sub).toBe(user.id);
      await page.waitForLoadState('networkidle');
      expect(problems).toEqual([]);
    } finally {
      await close();
    }
  });

  it('opens the confirmation straight from the link with the code (verification_uri_complete)', async () => {
    const authorization = await oidc.initiateDeviceAuthorization(rp, { scope: 'openid' });
    const { page, problems, close } = await openTab(browser, viewports.phone);
    try {
      await page.goto(authorization.verification_uri_complete!);
      await page.waitForSelector('.warning');
      expect(await page.locator('.user-code-shown').textContent()).toBe(authorization.user_code);
      await page.click('#device-abort button');
      await page.waitForSelector('#device-denied');
      await page.waitForLoadState('networkidle');
      expect(problems).toEqual([]);
    } finally {
      await close();
    }
  });
});
