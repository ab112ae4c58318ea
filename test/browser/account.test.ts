import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExamples, type ExampleSetup } from '../support/examples.js';
import { createUser, password } from '../support/fixtures.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { launchChromium, screenshot, viewports } from '../support/chromium.js';


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

describe('the account page in a real browser', () => {
  it('signs in from /account, shows sessions and apps at phone and desktop widths, and revokes an app by clicking', async () => {
    const user = await createUser(server.services, { email: 'account.page@example.com' });
    const context = await browser.newContext({ viewport: viewports.desktop });
    const problems: string[] = [];
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error on ${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`uncaught error on ${page.url()}: ${error.message}`));
    try {
      // Give an app access first (the example Notes app asks for consent).
      const [notes] = examples.apps;
      await page.goto(`${notes!.url}/`);
      await page.click('#sign-in');
      await page.waitForURL(/\/interaction\//);
      await page.fill('#email', user.email);
      await page.fill('#password', password);
      await page.click('button:has-text("Sign in")');
      await page.waitForURL(/\/interaction\//);
      expect(await page.locator('p.detail').first().textContent()).toContain(`Signed in as ${user.email}`);
      await page.click('button:has-text("Allow")');
      await page.waitForURL(`${notes!.url}/`);

      // The same Latchkey session opens the account page without another sign-in.
      await page.goto(`${server.issuer}/account`);
      expect(await page.locator('h1').textContent()).toBe('Your account');
      expect(await page.locator('#sessions .badge').textContent()).toBe('This device');
      expect(await page.locator('#apps .item strong').textContent()).toBe('Notes');
      await screenshot(page, 'account');

      await page.click('#apps button:has-text("Revoke access")');
      await page.waitForURL(`${server.issuer}/account?done=app-revoked`);
      expect(await page.locator('.notice').textContent()).toBe('The app no longer has access to your account.');
      expect(await page.locator('#apps .item').count()).toBe(0);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
