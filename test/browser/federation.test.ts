import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExamples, type ExampleSetup } from '../support/examples.js';
import { createClient, password } from '../support/fixtures.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { artifactsDir, launchChromium, openTab, viewports } from '../support/chromium.js';


// The organisation's identity provider (a second Latchkey) and the Latchkey the example apps use, which signs
// people in through it.
let upstream: TestServer;
let latchkey: TestServer;
let examples: ExampleSetup;
let browser: Browser;

beforeAll(async () => {
  [upstream, latchkey] = await Promise.all([startTestServer(), startTestServer()]);
  const registration = await createClient(upstream.services, {
    clientId: 'latchkey', name: 'Latchkey', skipConsent: true, redirectUris: [`${latchkey.issuer}/connections/corp/callback`],
  });
  await latchkey.services.connections.create({
    id: 'corp', name: 'Corp SSO', issuer: upstream.issuer, clientId: registration.clientId, clientSecret: registration.clientSecret!,
  });
  examples = await startExamples(latchkey);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await examples?.close();
  await latchkey?.close();
  await upstream?.close();
});

describe('signing in with another identity provider in a real browser', () => {
  it('clicks "Continue with Corp SSO", signs in at the upstream and lands in the example app', async () => {
    const person = await upstream.services.accounts.create({ email: 'browser.fed@example.com', password, givenName: 'Bea', familyName: 'Fed', emailVerified: true });
    const [notes] = examples.apps;
    const { page, problems, close } = await openTab(browser);
    try {
      await page.goto(`${notes.url}/`);
      await page.click('#sign-in');
      await page.waitForURL(new RegExp(`^${latchkey.issuer}/interaction/`));
      const button = page.getByRole('button', { name: 'Continue with Corp SSO' });
      expect(await button.isVisible()).toBe(true);
      for (const [label, viewport] of Object.entries(viewports)) {
        await page.setViewportSize(viewport);
        expect(await button.isVisible()).toBe(true);
        const box = (await button.boundingBox())!;
        // Fits the phone's screen and is big enough to tap (44 CSS pixels, WCAG 2.5.5).
        expect(box.x + box.width).toBeLessThanOrEqual(viewport.width);
        expect(box.height).toBeGreaterThanOrEqual(44);
        await page.screenshot({ path: path.join(artifactsDir, `login-with-connection-${label}.png`), fullPage: true });
      }
      await button.click();

      await page.waitForURL(new RegExp(`^${upstream.issuer}/interaction/`));
      await page.fill('#email', person.email);
      await page.fill('#password', password);
      await page.click('button:has-text("Sign in")');

      await page.waitForURL(new RegExp(`^${latchkey.issuer}/interaction/`));
      expect(await page.locator('h1').textContent()).toBe('Allow access?');
      await page.click('button:has-text("Allow")');
      await page.waitForURL(`${notes.url}/`);
      const local = await latchkey.services.accounts.findByEmail(person.email);
      expect(local).toMatchObject({ givenName: 'Bea', familyName: 'Fed', passwordHash: null });
      expect(await page.locator('#sub').textContent()).toBe(local!.id);
      await page.waitForLoadState('networkidle');
      expect(problems).toEqual([]);
    } finally {
      await close();
    }
  });

  it('shows a readable page with a way back when the person cancels at the upstream', async () => {
    const { page, problems, close } = await openTab(browser);
    try {
      await page.goto(`${examples.apps[1].url}/`);
      await page.click('#sign-in');
      await page.waitForURL(new RegExp(`^${latchkey.issuer}/interaction/`));
      const loginUrl = page.url();
      await page.click('button:has-text("Continue with Corp SSO")');
      await page.waitForURL(new RegExp(`^${upstream.issuer}/interaction/`));
      await page.click('button:has-text("Cancel")');
      await page.waitForURL(new RegExp(`^${latchkey.issuer}/interaction/.*/federated/callback`));
      expect(await page.locator('p.error[role="alert"]').textContent()).toBe('Signing in with Corp SSO was cancelled.');
      await page.screenshot({ path: path.join(artifactsDir, 'federation-cancelled.png'), fullPage: true });
      await page.click('a:has-text("Back to sign in")');
      await page.waitForURL(loginUrl);
      expect(await page.locator('#password').count()).toBe(1);
      await page.waitForLoadState('networkidle');
      expect(problems).toEqual([]);
    } finally {
      await close();
    }
  });
});
