import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExamples, type ExampleSetup } from '../support/examples.js';
import { createUser, password } from '../support/fixtures.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { chromiumPath } from './install-chromium.js';

const artifactsDir = path.resolve('test-artifacts');
const viewports = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 800 } };

let server: TestServer;
let examples: ExampleSetup;
let browser: Browser;

beforeAll(async () => {
  fs.mkdirSync(artifactsDir, { recursive: true });
  server = await startTestServer();
  examples = await startExamples(server);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
afterAll(async () => {
  await browser?.close();
  await examples?.close();
  await server?.close();
});

/** Saves the current page at phone and desktop widths to test-artifacts/NAME-phone.png and NAME-desktop.png. */
async function screenshot(page: Page, name: string) {
  for (const [label, viewport] of Object.entries(viewports)) {
    await page.setViewportSize(viewport);
    await page.screenshot({ path: path.join(artifactsDir, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(viewports.desktop);
}

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
