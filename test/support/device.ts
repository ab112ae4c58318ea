import { expect } from 'vitest';
import type { Browser, Page } from './browser.js';

export type Approval = { email: string; password: string; consent?: boolean };

/** Opens the device page and types the code (as a person might: any case, any dashes or spaces). */
export async function enterUserCode(browser: Browser, issuer: string, userCode: string): Promise<Page> {
  const page = await browser.follow(`${issuer}/device`);
  expect(page.status).toBe(200);
  return browser.submit(page, 'form[action="/device"]', { user_code: userCode });
}

/**
 * The person at the browser: enters the code, confirms the app, signs in with the hosted login and allows (or
 * denies) on the consent page; returns the page the flow ends on.
 */
export async function approveDevice(browser: Browser, issuer: string, userCode: string, approval: Approval): Promise<Page> {
  const confirmation = await enterUserCode(browser, issuer, userCode);
  expect(confirmation.html).toContain('Only continue if you started this sign-in yourself');
  let page = await browser.submit(confirmation, '#device-confirm');
  if (page.html.includes('name="password"')) {
    page = await browser.submit(page, 'form[action$="/login"]', { email: approval.email, password: approval.password });
  }
  if (page.url.includes('/interaction/') && page.html.includes('Allow access')) {
    page = await browser.submit(page, approval.consent === false ? 'form[action$="/abort"]' : 'form[action$="/confirm"]');
  }
  return page;
}
