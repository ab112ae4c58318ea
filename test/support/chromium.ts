import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { chromiumPath } from '../browser/install-chromium.js';

export const artifactsDir = path.resolve('test-artifacts');
export const viewports = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 800 } };

/** Debian's Chromium, headless, in a fresh temporary profile (playwright's default); nothing phones home. */
export async function launchChromium(): Promise<Browser> {
  fs.mkdirSync(artifactsDir, { recursive: true });
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/**
 * A tab in a fresh browser context (its own cookies) that records every console error, uncaught exception,
 * Content-Security-Policy violation and failed load (4xx/5xx) on every page it shows.
 */
export async function openTab(browser: Browser, viewport = viewports.desktop): Promise<{ page: Page; problems: string[]; close(): Promise<void> }> {
  const context = await browser.newContext({ viewport });
  const problems: string[] = [];
  await context.exposeBinding('reportCspViolation', ({ page }, violation: string) => {
    problems.push(`CSP violation on ${page.url()}: ${violation}`);
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      (window as unknown as { reportCspViolation(v: string): void }).reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI}`);
    });
  });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error on ${page.url()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`uncaught error on ${page.url()}: ${error.message}`));
  // The console names no URL for a failed load; this does.
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} for ${response.request().method()} ${response.url()}`);
  });
  return { page, problems, close: () => context.close() };
}

/** Saves the current page at phone and desktop widths to test-artifacts/NAME-phone.png and NAME-desktop.png. */
export async function screenshot(page: Page, name: string) {
  for (const [label, viewport] of Object.entries(viewports)) {
    await page.setViewportSize(viewport);
    await page.screenshot({ path: path.join(artifactsDir, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(viewports.desktop);
}
