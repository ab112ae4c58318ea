import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExamples, type ExampleSetup } from '../support/examples.js';
import { createUser } from '../support/fixtures.js';
import { startTestServer, testMailSettings, type TestServer } from '../support/server.js';
import { linkIn, startSmtpServer, type TestSmtpServer } from '../support/smtp.js';
import { launchChromium, screenshot, viewports } from '../support/chromium.js';

const newPassword = 'a passphrase chosen in chromium';

let smtp: TestSmtpServer;
let server: TestServer;
let examples: ExampleSetup;
let browser: Browser;

beforeAll(async () => {
  smtp = await startSmtpServer();
  server = await startTestServer({ mail: { ...testMailSettings, smtpUrl: smtp.url, registration: 'open' } });
  examples = await startExamples(server);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await examples?.close();
  await server?.close();
  await smtp?.close();
});

describe('forgot password in a real browser', () => {
  it('goes from the login page to the mailed link, sets a new password and signs in with it', async () => {
    const user = await createUser(server.services, { email: 'forgetful@example.com' });
    const [notes] = examples.apps;
    const context = await browser.newContext({ viewport: viewports.desktop });
    const problems: string[] = [];
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error on ${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`uncaught error on ${page.url()}: ${error.message}`));
    try {
      await page.goto(`${notes!.url}/`);
      await page.click('#sign-in');
      await page.waitForURL(/\/interaction\//);
      await page.click('a:has-text("Forgot your password?")');
      await page.waitForURL(/\/password\/forgot/);
      await screenshot(page, 'forgot-password');
      await page.fill('#email', user.email);
      await page.click('button:has-text("Send me a link")');
      await page.waitForSelector('h1:has-text("Check your inbox")');
      await screenshot(page, 'forgot-password-sent');

      const [mail] = await smtp.waitFor(1, (m) => m.envelopeTo.includes(user.email));
      await page.goto(linkIn(mail!, `${server.issuer}/password/reset?token=`));
      expect(await page.locator('h1').textContent()).toBe('Choose a new password');
      await screenshot(page, 'reset-password');
      await page.fill('#password', newPassword);
      await page.click('button:has-text("Set password")');

      // Back on the sign-in the person started from.
      await page.waitForURL(/\/interaction\//);
      await page.fill('#email', user.email);
      await page.fill('#password', newPassword);
      await page.click('button:has-text("Sign in")');
      await page.waitForURL(/\/interaction\//);
      await page.click('button:has-text("Allow")');
      await page.waitForURL(`${notes!.url}/`);
      expect(await page.locator('#sub').textContent()).toBe(user.id);

      // The other new pages, for the screenshots.
      await page.goto(`${server.issuer}/sign-up`);
      await screenshot(page, 'sign-up');
      await page.goto(`${server.issuer}/password/reset?token=${'x'.repeat(43)}`);
      await screenshot(page, 'reset-link-invalid');
      problems.splice(0, problems.length, ...problems.filter((line) => !line.includes('status of 400')));
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
