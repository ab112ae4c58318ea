import type { Browser, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../../examples/api/api.js';
import { startSpa, type RunningSpa } from '../../examples/spa/spa.js';
import { createUser, password } from '../support/fixtures.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { launchChromium } from '../support/chromium.js';

// examples/spa in Chromium: a public client with code + PKCE + DPoP through oauth4webapi (served by the example's
// own server), tokens in memory, refresh, a call to the example API, logout; CORS allowed for its origin only.

const audience = 'https://api.example.test';
let server: TestServer;
let api: RunningApi;
let spa: RunningSpa;
let browser: Browser;

beforeAll(async () => {
  server = await startTestServer();
  await server.services.apis.register(audience, ['read']);
  // Each needs the other's URL: the API is started again, on its port, once the SPA's origin is known.
  api = await startApi({ issuer: server.issuer, audience, jwksCooldownSeconds: 0 });
  spa = await startSpa({ issuer: server.issuer, clientId: 'spa', apiUrl: api.url, apiAudience: audience });
  const spaOrigin = spa.url;
  await api.close();
  api = await startApi({ issuer: server.issuer, audience, jwksCooldownSeconds: 0, corsOrigins: [spaOrigin], port: Number(new URL(api.url).port) });
  await server.services.clients.register({
    clientId: 'spa', name: 'Single-page app', isPublic: true, requireDpop: true, webOrigins: [spaOrigin],
    redirectUris: [`${spaOrigin}/callback`], postLogoutRedirectUris: [`${spaOrigin}/signed-out`],
    grantTypes: ['authorization_code', 'refresh_token'], apis: [{ audience, scopes: ['read'] }],
  });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await spa?.close();
  await api?.close();
  await server?.close();
});

describe('the example single-page app in a real browser', () => {
  it('signs in with DPoP, calls the API, refreshes, keeps nothing in storage and signs out', async () => {
    const user = await createUser(server.services, { email: 'spa.user@example.com' });
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => { if (message.type() === 'error') problems.push(message.text()); });
    page.on('pageerror', (error) => problems.push(error.message));
    const apiRequests: Request[] = [];
    page.on('request', (request) => { if (request.url().startsWith(`${api.url}/hello`) && request.method() === 'GET') apiRequests.push(request); });
    try {
      await page.goto(`${spa.url}/`);
      await page.waitForSelector('#sign-in:not([hidden])');
      await page.click('#sign-in');
      await page.waitForURL(/\/interaction\//);
      await page.fill('#email', user.email);
      await page.fill('#password', password);
      await page.click('button:has-text("Sign in")');
      await page.waitForURL(/\/interaction\//);
      await page.click('button:has-text("Allow")');
      await page.waitForURL(`${spa.url}/`);
      await page.waitForSelector('#call-api:not([hidden])');
      expect(await page.locator('#status').textContent()).toBe(`Signed in as ${user.email}`);

      await page.click('#call-api');
      await page.waitForFunction(() => document.getElementById('output')?.textContent?.includes('Hello'));
      const first = JSON.parse((await page.locator('#output').textContent())!);
      expect(first).toMatchObject({ message: `Hello, ${user.email}!`, sub: user.id, clientId: 'spa', scope: 'read' });
      const headers = await apiRequests[0].allHeaders();
      expect(headers.authorization).toMatch(/^DPoP /);
      expect(headers.dpop).toBeTruthy();

      await page.click('#refresh');
      await page.waitForFunction(() => document.getElementById('output')?.textContent === 'Tokens refreshed.');
      await page.click('#call-api');
      await page.waitForFunction(() => document.getElementById('output')?.textContent?.includes('Hello'));
      const second = JSON.parse((await page.locator('#output').textContent())!);
      expect(second.token.id).not.toBe(first.token.id);

      // Tokens in memory only: nothing in the page's storage, and no cookie of its own (cookies are not isolated by
      // port: the ones the browser sends to localhost are Latchkey's, httpOnly, set by the issuer on another port).
      expect(await page.evaluate(() => [localStorage.length, sessionStorage.length])).toEqual([0, 0]);
      const cookies = await context.cookies(spa.url);
      expect(cookies.filter((cookie) => !/^_(session|interaction|resume)/.test(cookie.name) || !cookie.httpOnly)).toEqual([]);
      expect(JSON.stringify(cookies)).not.toContain(first.token.id);

      await page.click('#sign-out');
      await page.waitForURL(/\/session\/end/);
      await page.click('button:has-text("Yes, sign me out")');
      await page.waitForURL(`${spa.url}/`);
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'Signed out');
      // Latchkey's session has ended: signing in asks for the password again.
      await page.click('#sign-in');
      await page.waitForURL(/\/interaction\//);
      expect(await page.locator('#password').count()).toBe(1);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('cannot read Latchkey\'s token endpoint from another origin', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      // The API's origin is another origin Latchkey was not told about: the browser blocks the answer.
      await page.goto(`${api.url}/hello`);
      const outcome = await page.evaluate(async (tokenEndpoint) => {
        try {
          await fetch(tokenEndpoint, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x', client_id: 'spa' }) });
          return 'read';
        } catch {
          return 'blocked';
        }
      }, `${server.issuer}/token`);
      expect(outcome).toBe('blocked');
    } finally {
      await context.close();
    }
  });
});
