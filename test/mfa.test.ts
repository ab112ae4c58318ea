import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as oidc from 'openid-client';
import { createBrowser, textOf, type Browser, type Page } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, signIn } from './support/rp.js';
import {
  isAtCallback, shownRecoveryCodes, shownSecret, startAuthorization, submitCode, submitPassword, totpCode,
} from './support/second-factor.js';
import { startTestServer, type TestServer } from './support/server.js';

const step = 30_000;
const mfaAcr = 'urn:latchkey:acr:mfa';

let server: TestServer;
let rp: oidc.Configuration;
const clock = { time: Date.now() };
const logLines: string[] = [];
/** Every secret and code the tests saw: none may appear in a log line. */
const secretsSeen: string[] = [];

beforeAll(async () => {
  server = await startTestServer({}, undefined, { logDestination: { write: (line: string) => void logLines.push(line) }, now: () => clock.time });
  const client = await createClient(server.services, { skipConsent: true });
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(() => server.close());

/** Moves the test clock to a fresh TOTP step, so the code of "now" has not been used yet. */
const nextStep = () => {
  clock.time += step;
  return clock.time;
};

/** Signs the browser in with the password (a user without a factor), then enrols TOTP on /account/security. */
async function enrol(browser: Browser, user: { email: string }) {
  await signIn(rp, browser, { email: user.email, password });
  const overview = await browser.follow(`${server.issuer}/account/security`);
  const started = await browser.submit(overview, 'form[action="/account/security/totp"]');
  const secret = shownSecret(started);
  const done = await browser.submit(started, 'form[action="/account/security/totp/confirm"]', { code: totpCode(secret, clock.time), password });
  const recoveryCodes = shownRecoveryCodes(done);
  secretsSeen.push(secret, ...recoveryCodes);
  nextStep();
  return { secret, recoveryCodes, started, done };
}

/** A user with an authenticator app; `browser` holds their password-only session from before they enrolled. */
async function enrolledUser() {
  const user = await createUser(server.services);
  const browser = createBrowser();
  return { user, browser, ...(await enrol(browser, user)) };
}

/** A sign-in from a fresh browser up to the second-factor page. */
async function toCodePage(email: string, extra: Record<string, string> = {}) {
  const browser = createBrowser();
  const flow = await startAuthorization(rp, browser, extra);
  const page = await submitPassword(browser, flow.page, email, password);
  return { browser, page, redeem: flow.redeem };
}

describe('enrolling an authenticator app on /account/security', () => {
  it('asks a signed-out visitor to sign in first, with the hosted pages\' headers', async () => {
    const page = await createBrowser().follow(`${server.issuer}/account/security`);
    expect(page.status).toBe(401);
    expect(textOf(page.html, 'h1')).toBe('Sign in first');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.headers.get('cache-control')).toBe('no-store');
  });

  it('shows a QR code and the secret as text, needs one valid code and the password, and gives ten recovery codes', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    await signIn(rp, browser, { email: user.email, password });
    const started = await browser.submit(await browser.follow(`${server.issuer}/account/security`), 'form[action="/account/security/totp"]');
    expect(started.html).toContain('<svg');
    const secret = shownSecret(started);
    secretsSeen.push(secret);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);

    const wrongCode = await browser.submit(started, 'form[action="/account/security/totp/confirm"]', { code: totpCode(secret, clock.time + 10 * step), password });
    expect(wrongCode.status).toBe(400);
    expect(textOf(wrongCode.html, '.error')).toContain('That code is not right');
    const wrongPassword = await browser.submit(started, 'form[action="/account/security/totp/confirm"]', { code: totpCode(secret, clock.time), password: 'not the password' });
    expect(textOf(wrongPassword.html, '.error')).toBe('That password is not right.');
    expect(await server.services.secondFactors.hasFactor(user.id)).toBe(false);

    const done = await browser.submit(started, 'form[action="/account/security/totp/confirm"]', { code: totpCode(secret, clock.time), password });
    const codes = shownRecoveryCodes(done);
    secretsSeen.push(...codes);
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    expect(await server.services.secondFactors.list(user.id)).toMatchObject({ factors: [{ kind: 'totp' }], recoveryCodesLeft: 10 });

    // At rest: the secret is sealed, the recovery codes are hashes.
    const [row] = await server.database('second_factors').where({ account_id: user.id });
    expect(row.secret).not.toContain(secret);
    expect(row.secret).toMatch(/^v1\./);
    const hashes = (await server.database('recovery_codes').where({ account_id: user.id })).map((r: { code_hash: string }) => r.code_hash);
    for (const code of codes) expect(hashes.join()).not.toContain(code.replace(/-/g, ''));
    nextStep();
  });

  it('refuses a form without the session\'s CSRF token, and one with another session\'s', async () => {
    const { browser, recoveryCodes } = await enrolledUser();
    const other = await enrolledUser();
    const otherToken = (await other.browser.follow(`${server.issuer}/account/security`)).html.match(/name="csrf" value="([^"]+)"/)![1];
    for (const csrf of ['forged', otherToken]) {
      const response = await browser.request(`${server.issuer}/account/security/recovery-codes`, {
        method: 'POST', body: new URLSearchParams({ password, csrf }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(response.status).toBe(400);
      expect(await response.text()).toContain('The form has expired or did not come from this site.');
    }
    // Nothing changed: the codes still work.
    const flow = await toCodePage(other.user.email);
    expect(flow.page.html).toContain('name="code"');
    expect(recoveryCodes).toHaveLength(10);
  });
});

describe('signing in with a second factor', () => {
  it('asks for the code after the password and finishes with amr pwd+otp+mfa, acr mfa and auth_time', async () => {
    const { user, secret } = await enrolledUser();
    const { browser, page, redeem } = await toCodePage(user.email);
    expect(page.url).toMatch(/\/interaction\/[^/]+\/mfa$/);
    expect(page.html).not.toContain('name="password"');
    const wrong = await submitCode(browser, page, '000000' === totpCode(secret, clock.time) ? '111111' : '000000');
    expect(textOf(wrong.html, '.error')).toContain('That code is not right');
    const before = Math.floor(Date.now() / 1000);
    const done = await submitCode(browser, wrong, totpCode(secret, clock.time));
    expect(isAtCallback(done)).toBe(true);
    const claims = (await redeem(done)).claims()!;
    expect(claims.sub).toBe(user.id);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims.acr).toBe(mfaAcr);
    expect(claims.auth_time).toBeGreaterThanOrEqual(before - 1);
  });

  it('accepts a code once: the same code in a second sign-in is refused (replay)', async () => {
    const { user, secret } = await enrolledUser();
    const code = totpCode(secret, clock.time);
    const first = await toCodePage(user.email);
    expect(isAtCallback(await submitCode(first.browser, first.page, code))).toBe(true);
    const second = await toCodePage(user.email);
    const replayed = await submitCode(second.browser, second.page, code);
    expect(isAtCallback(replayed)).toBe(false);
    expect(textOf(replayed.html, '.error')).toContain('That code is not right');
  });

  it('accepts one step of clock drift either way and refuses two', async () => {
    const { user, secret } = await enrolledUser();
    const attempt = async (offsetSteps: number) => {
      const flow = await toCodePage(user.email);
      return isAtCallback(await submitCode(flow.browser, flow.page, totpCode(secret, clock.time + offsetSteps * step)));
    };
    clock.time += 10 * step;
    expect(await attempt(-1)).toBe(true);
    expect(await attempt(+1)).toBe(true);
    clock.time += 10 * step;
    expect(await attempt(-2)).toBe(false);
    expect(await attempt(+2)).toBe(false);
    expect(await attempt(0)).toBe(true);
  });

  it('takes a recovery code once, with amr pwd+mfa (no otp), and a new set invalidates the old one', async () => {
    const { user, recoveryCodes } = await enrolledUser();
    const first = await toCodePage(user.email);
    const done = await submitCode(first.browser, first.page, recoveryCodes[0].toUpperCase());
    expect(isAtCallback(done)).toBe(true);
    const claims = (await first.redeem(done)).claims()!;
    expect(claims.amr).toEqual(['pwd', 'mfa']);
    expect(claims.acr).toBe(mfaAcr);

    const again = await toCodePage(user.email);
    expect(isAtCallback(await submitCode(again.browser, again.page, recoveryCodes[0]))).toBe(false);

    // New codes (the password again) on the account page: the old set stops working.
    const browser = createBrowser();
    const flow = await toCodePageIn(browser, user.email);
    await submitCode(browser, flow, recoveryCodes[1]);
    const overview = await browser.follow(`${server.issuer}/account/security`);
    const regenerated = await browser.submit(overview, 'form[action="/account/security/recovery-codes"]', { password });
    const newCodes = shownRecoveryCodes(regenerated);
    secretsSeen.push(...newCodes);
    expect(newCodes).toHaveLength(10);
    const old = await toCodePage(user.email);
    expect(isAtCallback(await submitCode(old.browser, old.page, recoveryCodes[2]))).toBe(false);
    const fresh = await toCodePage(user.email);
    expect(isAtCallback(await submitCode(fresh.browser, fresh.page, newCodes[0]))).toBe(true);
  });

  it('removes the authenticator app on the account page (the password again), after which the password alone signs in', async () => {
    const { user, secret } = await enrolledUser();
    const browser = createBrowser();
    const page = await toCodePageIn(browser, user.email);
    await submitCode(browser, page, totpCode(secret, clock.time));
    const overview = await browser.follow(`${server.issuer}/account/security`);
    const removed = await browser.submit(overview, 'form[action="/account/security/totp/remove"]', { password });
    expect(textOf(removed.html, '.notice')).toBe('The authenticator app was removed.');
    expect(await server.services.secondFactors.list(user.id)).toEqual({ factors: [], recoveryCodesLeft: 0 });
    const fresh = createBrowser();
    const flow = await startAuthorization(rp, fresh);
    const done = await submitPassword(fresh, flow.page, user.email, password);
    expect(isAtCallback(done)).toBe(true);
    expect((await flow.redeem(done)).claims()).toMatchObject({ amr: ['pwd'], acr: 'urn:latchkey:acr:pwd' });
  });
});

/** The code page of a sign-in in `browser` (which keeps the session afterwards). */
async function toCodePageIn(browser: Browser, email: string): Promise<Page> {
  const flow = await startAuthorization(rp, browser);
  return submitPassword(browser, flow.page, email, password);
}

describe('step-up with acr_values', () => {
  it('asks a password-only session for the code alone and raises acr, amr and auth_time', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    const { secret } = await enrol(browser, user);
    // Without acr_values the password-only session signs in silently, with acr pwd.
    const silent = await startAuthorization(rp, browser);
    expect(isAtCallback(silent.page)).toBe(true);
    const pwdClaims = (await silent.redeem(silent.page)).claims()!;
    expect(pwdClaims).toMatchObject({ acr: 'urn:latchkey:acr:pwd', amr: ['pwd'] });

    const stepUp = await startAuthorization(rp, browser, { acr_values: mfaAcr });
    expect(stepUp.page.html).toContain('name="code"');
    expect(stepUp.page.html).not.toContain('name="password"');
    const done = await submitCode(browser, stepUp.page, totpCode(secret, clock.time));
    expect(isAtCallback(done)).toBe(true);
    const claims = (await stepUp.redeem(done)).claims()!;
    expect(claims.acr).toBe(mfaAcr);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims.auth_time).toBeGreaterThanOrEqual(pwdClaims.auth_time as number);

    // The session now has mfa: asking again needs nothing more.
    const again = await startAuthorization(rp, browser, { acr_values: mfaAcr });
    expect(isAtCallback(again.page)).toBe(true);
  });

  it('advertises the acr values in discovery', async () => {
    const discovery = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json() as { acr_values_supported: string[] };
    expect(discovery.acr_values_supported).toEqual(['urn:latchkey:acr:pwd', mfaAcr]);
  });
});

describe('single use under concurrency', () => {
  it('lets one of two sign-ins sent at once with the same TOTP code through, and one with the same recovery code', async () => {
    const { user, secret, recoveryCodes } = await enrolledUser();
    for (const code of [totpCode(secret, clock.time), recoveryCodes[0]]) {
      const flows = await Promise.all([toCodePage(user.email), toCodePage(user.email), toCodePage(user.email)]);
      const pages = await Promise.all(flows.map((flow) => submitCode(flow.browser, flow.page, code)));
      expect(pages.filter(isAtCallback)).toHaveLength(1);
    }
  });
});

describe('nothing secret in the logs', () => {
  it('logs no TOTP secret and no code', () => {
    expect(secretsSeen.length).toBeGreaterThan(10);
    const log = logLines.join('\n');
    expect(logLines.some((line) => line.includes('sign_in.second_factor_success'))).toBe(true);
    for (const secret of secretsSeen) expect(log).not.toContain(secret);
  });
});
