import { parse } from 'node-html-parser';
import type * as oidc from 'openid-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createAuthenticator } from './support/authenticator.js';
import { createBrowser, textOf, type Browser, type Page } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { csrfOf, enrolPasskey, postForOptions, submitPasskey } from './support/passkey-flows.js';
import { discoverRp, redirectUri, signIn } from './support/rp.js';
import {
  isAtCallback, shownRecoveryCodes, shownSecret, startAuthorization, submitCode, submitPassword, totpCode,
} from './support/second-factor.js';
import { startTestServer, type TestServer } from './support/server.js';

// Step-up for `max_age` (docs/mfa.md, "Asking for step-up"): a session older than the app allows is asked for a
// fresh second factor, not the password, when the person has one; everything else still needs the full sign-in.

const mfaAcr = 'urn:latchkey:acr:mfa';
const maxAge = 600;
const form = { 'content-type': 'application/x-www-form-urlencoded' };

let server: TestServer;
let rp: oidc.Configuration;

// oidc-provider reads the time from Date (its max_age check and the session's sign-in time, auth_time); the
// server's own clock (TOTP steps, the login throttle) is `now`. Both are frozen at `time`, and the tests move them
// together: nothing waits for the clock.
let time = 0;
const moveOn = (seconds: number) => {
  time += seconds * 1000;
  vi.setSystemTime(time);
};
const epochSeconds = () => Math.floor(time / 1000);

beforeAll(async () => {
  server = await startTestServer({
    loginThrottle: {
      pairMaxFailures: 3, lockSeconds: 60, lockMaxSeconds: 240, accountMaxFailuresPerHour: 1000, ipMaxFailuresPerDay: 1000,
      ipMaxAttemptsPerMinute: 1_000_000, accountMaxAttemptsPerMinute: 1_000_000,
    },
  }, undefined, { now: () => time });
  const client = await createClient(server.services, { skipConsent: true });
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(() => server.close());
beforeEach(() => {
  time = Math.max(time, Date.now());
  vi.useFakeTimers({ toFake: ['Date'], now: time });
});
afterEach(() => {
  vi.useRealTimers();
});

/** A user who signed in with the password in `browser` (a password-only session), then set up an authenticator app. */
async function userWithApp() {
  const user = await createUser(server.services);
  const browser = createBrowser();
  const first = await signIn(rp, browser, { email: user.email, password });
  const started = await browser.submit(await browser.follow(`${server.issuer}/account/security`), 'form[action="/account/security/totp"]');
  const secret = shownSecret(started);
  const done = await browser.submit(started, 'form[action="/account/security/totp/confirm"]', { code: totpCode(secret, time), password });
  const recoveryCodes = shownRecoveryCodes(done);
  expect(recoveryCodes).toHaveLength(10);
  moveOn(30);
  return { user, browser, secret, recoveryCodes, signedInAt: first.tokens.claims()!.auth_time! };
}

const askMaxAge = (browser: Browser, extra: Record<string, string> = {}) => startAuthorization(rp, browser, { max_age: String(maxAge), ...extra });

function expectFactorPage(page: Page) {
  expect(page.url).toMatch(/\/interaction\/[^/?]+(\/mfa)?$/);
  expect(textOf(page.html, 'h1')).toBe('Two-step sign-in');
  expect(page.html).toContain('name="code"');
  expect(page.html).not.toContain('name="password"');
}

function expectPasswordPage(page: Page) {
  expect(page.url).toMatch(/\/interaction\/[^/?]+$/);
  expect(page.html).toContain('name="password"');
  expect(page.html).not.toContain('name="code"');
}

describe('a sign-in older than max_age', () => {
  it('asks someone with an authenticator app for a code alone, and the ID token has the new auth_time, amr and acr mfa', async () => {
    const { user, browser, secret, signedInAt } = await userWithApp();
    const recent = await askMaxAge(browser);
    expect(isAtCallback(recent.page)).toBe(true);
    expect((await recent.redeem(recent.page)).claims()).toMatchObject({ auth_time: signedInAt, amr: ['pwd'] });

    moveOn(maxAge + 1);
    const stale = await askMaxAge(browser);
    expectFactorPage(stale.page);
    const provedAt = epochSeconds();
    const done = await submitCode(browser, stale.page, totpCode(secret, time));
    expect(isAtCallback(done)).toBe(true);
    const claims = (await stale.redeem(done)).claims()!;
    expect(claims).toMatchObject({ sub: user.id, auth_time: provedAt, amr: ['pwd', 'otp', 'mfa'], acr: mfaAcr });
    expect(provedAt).toBeGreaterThan(signedInAt + maxAge);

    // The session now holds the fresh proof: the same max_age is met without a page, with the same auth_time.
    moveOn(30);
    const again = await askMaxAge(browser);
    expect(isAtCallback(again.page)).toBe(true);
    expect((await again.redeem(again.page)).claims()).toMatchObject({ auth_time: provedAt, acr: mfaAcr });
    const audit = await auditTypes(user.id);
    expect(audit).toContain('sign_in.second_factor_success');
  });

  it('takes a recovery code, or a passkey, as the fresh proof too', async () => {
    const { browser, recoveryCodes } = await userWithApp();
    moveOn(maxAge + 1);
    const stale = await askMaxAge(browser);
    const done = await submitCode(browser, stale.page, recoveryCodes[0]);
    expect((await stale.redeem(done)).claims()).toMatchObject({ auth_time: epochSeconds(), amr: ['pwd', 'mfa'], acr: mfaAcr });

    const withPasskey = await createUser(server.services);
    const passkeyBrowser = createBrowser();
    const authenticator = createAuthenticator({ origin: server.issuer, rpId: 'localhost' });
    await signIn(rp, passkeyBrowser, { email: withPasskey.email, password });
    await enrolPasskey(passkeyBrowser, server.issuer, authenticator);
    moveOn(maxAge + 1);
    const passkeyStale = await askMaxAge(passkeyBrowser);
    expect(textOf(passkeyStale.page.html, 'h1')).toBe('Two-step sign-in');
    expect(passkeyStale.page.html).not.toContain('name="password"');
    const optionsUrl = new URL(parse(passkeyStale.page.html).querySelector('form.passkey')!.getAttribute('data-options')!, passkeyStale.page.url).href;
    const { json } = await postForOptions<Parameters<typeof authenticator.assert>[0]>(passkeyBrowser, optionsUrl, { csrf: csrfOf(passkeyStale.page, 'form.passkey') });
    const passkeyDone = await submitPasskey(passkeyBrowser, passkeyStale.page, authenticator.assert(json.options!), redirectUri);
    expect((await passkeyStale.redeem(passkeyDone)).claims()).toMatchObject({
      sub: withPasskey.id, auth_time: epochSeconds(), amr: ['pwd', 'pop', 'mfa'], acr: mfaAcr,
    });
  });

  it('counts wrong codes in the login throttle, as after the password', async () => {
    const { user, browser, secret } = await userWithApp();
    moveOn(maxAge + 1);
    const stale = await askMaxAge(browser);
    let page = stale.page;
    for (const code of ['000001', '000002']) {
      page = await submitCode(browser, page, code);
      expect(page.status).toBe(200);
      expect(textOf(page.html, '.error')).toContain('That code is not right');
    }
    const locked = await submitCode(browser, page, '000003');
    expect(locked.status).toBe(429);
    expect(textOf(locked.html, '.error')).toBe('Too many attempts, try again in 1 minute.');
    // Locked, the right code is refused as well, until the lock ends.
    const refused = await submitCode(browser, locked, totpCode(secret, time));
    expect(refused.status).toBe(429);
    moveOn(61);
    const done = await submitCode(browser, refused, totpCode(secret, time));
    expect((await stale.redeem(done)).claims()).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], auth_time: epochSeconds() });
    expect(await auditTypes(user.id)).toEqual(expect.arrayContaining(['sign_in.second_factor_failure', 'sign_in.locked']));
  });

  it('asks someone without a second factor for the password, as before', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    await signIn(rp, browser, { email: user.email, password });
    moveOn(maxAge + 1);
    const stale = await askMaxAge(browser);
    expectPasswordPage(stale.page);
    const done = await submitPassword(browser, stale.page, user.email, password);
    expect((await stale.redeem(done)).claims()).toMatchObject({ sub: user.id, auth_time: epochSeconds(), amr: ['pwd'] });
  });
});

describe('what still needs the full sign-in', () => {
  it('prompt=login asks for the password (and then the code), with or without max_age', async () => {
    const { user, browser, secret } = await userWithApp();
    const fresh = await startAuthorization(rp, browser, { prompt: 'login' });
    expectPasswordPage(fresh.page);
    moveOn(maxAge + 1);
    const stale = await askMaxAge(browser, { prompt: 'login' });
    expectPasswordPage(stale.page);
    const codePage = await submitPassword(browser, stale.page, user.email, password);
    expectFactorPage(codePage);
    const done = await submitCode(browser, codePage, totpCode(secret, time));
    expect((await stale.redeem(done)).claims()).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], auth_time: epochSeconds() });
  });

  it('a session whose person was disabled meanwhile gets no factor page, and its code is refused', async () => {
    const { user, browser, secret } = await userWithApp();
    // As when a request in flight saves the session again after `users disable` ended it: the session is there,
    // the person is not (no store offers a test this state, so the row is changed directly).
    await server.database('users').where({ id: user.id }).update({ is_active: false });
    moveOn(maxAge + 1);
    const stale = await askMaxAge(browser);
    expectPasswordPage(stale.page);
    const refused = await browser.request(`${stale.page.url}/mfa`, {
      method: 'POST', body: new URLSearchParams({ csrf: csrfOf(stale.page, 'form[action$="/login"]'), code: totpCode(secret, time) }), headers: form,
    });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('This sign-in has no second step waiting');
    expect(await auditTypes(user.id)).not.toContain('sign_in.second_factor_success');
  });

  it('a session from before the password last changed (the session cutoff) gets the password form, not a factor page', async () => {
    const { user, browser } = await userWithApp();
    moveOn(maxAge + 1);
    // As when a request in flight saves the session again after the password changed (src/oidc/session-cutoff.ts).
    await server.database('users').where({ id: user.id }).update({ sessions_valid_after: time });
    const stale = await askMaxAge(browser);
    expectPasswordPage(stale.page);
  });
});

async function auditTypes(accountId: string) {
  await server.services.audit.settled();
  return (await server.services.auditEvents.list({ accountId, limit: 100 })).map((event) => event.type);
}
