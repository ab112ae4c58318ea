import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, textOf, type Browser, type Page } from './support/browser.js';
import { runCliCapturing } from './support/cli.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, signIn } from './support/rp.js';
import {
  isAtCallback, shownRecoveryCodes, shownSecret, startAuthorization, submitCode, submitPassword, totpCode,
} from './support/second-factor.js';
import { startTestServer } from './support/server.js';

const step = 30_000;
const mfaAcr = 'urn:latchkey:acr:mfa';

type Clock = { time: number };

async function startServerWithClock(overrides: Parameters<typeof startTestServer>[0] = {}) {
  const clock: Clock = { time: Date.now() };
  const server = await startTestServer({ trustedProxyCount: 1, ...overrides }, undefined, { now: () => clock.time });
  const client = await createClient(server.services, { skipConsent: true });
  const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
  return { server, clock, rp };
}

/** Enrols TOTP inside a sign-in (MFA=required or an app that requires it): the secret, the codes, the finished page. */
async function enrolDuringSignIn(browser: Browser, page: Page, clock: Clock) {
  expect(page.url).toMatch(/\/interaction\/[^/]+\/mfa(\/enrol)?$/);
  expect(textOf(page.html, 'h1')).toBe('Set up two-step sign-in');
  const secret = shownSecret(page);
  const codesPage = await browser.submit(page, 'form[action$="/mfa/enrol"]', { code: totpCode(secret, clock.time) });
  const codes = shownRecoveryCodes(codesPage);
  expect(codes).toHaveLength(10);
  const continueTo = codesPage.html.match(/href="([^"]+)"/g)!.map((href) => href.slice(6, -1)).find((href) => href.includes('/auth/'))!;
  const finished = await browser.follow(continueTo.replace(/&amp;/g, '&'), {}, 'http://localhost:8765/callback');
  clock.time += step;
  return { secret, codes, finished };
}

describe('guessing second-factor codes', () => {
  let setup: Awaited<ReturnType<typeof startServerWithClock>>;
  beforeAll(async () => {
    setup = await startServerWithClock({
      loginThrottle: {
        pairMaxFailures: 3, lockSeconds: 60, lockMaxSeconds: 240, accountMaxFailuresPerHour: 1000, ipMaxFailuresPerDay: 1000,
        ipMaxAttemptsPerMinute: 1000, accountMaxAttemptsPerMinute: 1000,
      },
    });
  });
  afterAll(() => setup.server.close());

  async function enrolledUser() {
    const { server, rp, clock } = setup;
    const user = await createUser(server.services);
    const browser = createBrowser({ headers: { 'x-forwarded-for': '198.51.100.9' } });
    await signIn(rp, browser, { email: user.email, password });
    const started = await browser.submit(await browser.follow(`${server.issuer}/account/security`), 'form[action="/account/security/totp"]');
    const secret = shownSecret(started);
    await browser.submit(started, 'form[action="/account/security/totp/confirm"]', { code: totpCode(secret, clock.time), password });
    clock.time += step;
    return { user, secret };
  }

  /** A fresh browser at `ip`, through the password to whatever page comes next. */
  async function passwordStep(email: string, pass: string, ip = '192.0.2.7') {
    const browser = createBrowser({ headers: { 'x-forwarded-for': ip } });
    const flow = await startAuthorization(setup.rp, browser);
    return { browser, page: await submitPassword(browser, flow.page, email, pass) };
  }

  it('locks after a few wrong codes, and the login form then answers the same for a right and a wrong password', async () => {
    const { user } = await enrolledUser();
    const { browser, page } = await passwordStep(user.email, password);
    let current = page;
    for (let i = 0; i < 2; i++) {
      current = await submitCode(browser, current, '000001');
      expect(current.status).toBe(200);
    }
    const locked = await submitCode(browser, current, '000002');
    expect(locked.status).toBe(429);
    expect(textOf(locked.html, '.error')).toBe('Too many attempts, try again in 1 minute.');

    // What an attacker learns by trying a password now: nothing. The lock answers before any password is checked.
    const right = await passwordStep(user.email, password);
    const wrong = await passwordStep(user.email, 'not the password');
    for (const attempt of [right, wrong]) {
      expect(attempt.page.status).toBe(429);
      expect(attempt.page.headers.get('retry-after')).toBe('60');
      expect(textOf(attempt.page.html, '.error')).toBe('Too many attempts, try again in 1 minute.');
      expect(attempt.page.html).toContain('name="password"');
    }
    const strip = (html: string) => html.replace(/\/interaction\/[^/"]+/g, '').replace(/interaction=[^"&]+/g, '').replace(/value="[^"]*"/g, '');
    expect(strip(right.page.html)).toBe(strip(wrong.page.html));
  });

  it('does not let the right password wipe out wrong codes: signing in again keeps counting them', async () => {
    const { user } = await enrolledUser();
    const first = await passwordStep(user.email, password, '192.0.2.8');
    let current = await submitCode(first.browser, first.page, '000003');
    current = await submitCode(first.browser, current, '000004');
    expect(current.status).toBe(200);
    // The attacker who knows the password starts again, hoping for a fresh count.
    const second = await passwordStep(user.email, password, '192.0.2.8');
    expect(second.page.url).toMatch(/\/mfa$/);
    const third = await submitCode(second.browser, second.page, '000005');
    expect(third.status).toBe(429);
  });

  it('lets the right code through after the lock ends, and forgets the failures', async () => {
    const { server, clock } = setup;
    const { user, secret } = await enrolledUser();
    const first = await passwordStep(user.email, password, '192.0.2.9');
    let current = first.page;
    for (const code of ['000006', '000007', '000008']) current = await submitCode(first.browser, current, code);
    expect(current.status).toBe(429);
    clock.time += 61_000;
    const again = await passwordStep(user.email, password, '192.0.2.9');
    const done = await submitCode(again.browser, again.page, totpCode(secret, clock.time));
    expect(isAtCallback(done)).toBe(true);
    expect(server).toBeDefined();
  });
});

describe('MFA=required', () => {
  let setup: Awaited<ReturnType<typeof startServerWithClock>>;
  beforeAll(async () => {
    setup = await startServerWithClock({ mfa: { policy: 'required', totpDriftSteps: 1, passkeyTimeoutSeconds: 300 } });
  });
  afterAll(() => setup.server.close());

  it('guides someone without a factor through enrolment inside the sign-in, then signs them in with mfa', async () => {
    const { server, rp, clock } = setup;
    const user = await createUser(server.services);
    const browser = createBrowser();
    const flow = await startAuthorization(rp, browser);
    const page = await submitPassword(browser, flow.page, user.email, password);
    const wrong = await browser.submit(page, 'form[action$="/mfa/enrol"]', { code: '123456' === totpCode(shownSecret(page), clock.time) ? '654321' : '123456' });
    expect(textOf(wrong.html, '.error')).toContain('That code is not right');
    expect(shownSecret(wrong)).toBe(shownSecret(page));
    const { finished, secret } = await enrolDuringSignIn(browser, wrong, clock);
    expect(isAtCallback(finished)).toBe(true);
    expect((await flow.redeem(finished)).claims()).toMatchObject({ sub: user.id, acr: mfaAcr, amr: ['pwd', 'otp', 'mfa'] });

    // The next sign-in asks for the code.
    const next = createBrowser();
    const nextFlow = await startAuthorization(rp, next);
    const codePage = await submitPassword(next, nextFlow.page, user.email, password);
    expect(textOf(codePage.html, 'h1')).toBe('Two-step sign-in');
    expect(isAtCallback(await submitCode(next, codePage, totpCode(secret, clock.time)))).toBe(true);

    // And the app cannot be removed on the account page.
    const overview = await next.follow(`${server.issuer}/account/security`);
    expect(overview.html).not.toContain('/account/security/totp/remove');
    const csrf = overview.html.match(/name="csrf" value="([^"]+)"/)![1];
    const refused = await next.follow(`${server.issuer}/account/security/totp/remove`, {
      method: 'POST', body: new URLSearchParams({ csrf, password }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(refused.status).toBe(409);
    expect(textOf(refused.html, '.error')).toContain('cannot be removed');
    expect(await server.services.secondFactors.hasFactor(user.id)).toBe(true);
  });

  it('does not finish a sign-in whose enrolment was skipped: the callback is out of reach without a code', async () => {
    const { server, rp } = setup;
    const user = await createUser(server.services);
    const browser = createBrowser();
    const flow = await startAuthorization(rp, browser);
    const page = await submitPassword(browser, flow.page, user.email, password);
    const uid = page.url.match(/\/interaction\/([^/]+)\/mfa$/)![1];
    // Straight to the authorization endpoint's resume URL: no login was recorded, so it asks again.
    const resumed = await browser.follow(`${server.issuer}/auth/${uid}`, {}, 'http://localhost:8765/callback');
    expect(isAtCallback(resumed)).toBe(false);
  });
});

describe('an app registered with --require-mfa', () => {
  let setup: Awaited<ReturnType<typeof startServerWithClock>>;
  beforeAll(async () => {
    setup = await startServerWithClock();
  });
  afterAll(() => setup.server.close());

  it('makes its users set up a factor inside the sign-in where other apps do not, and the session alone cannot set one up', async () => {
    const { server, rp, clock } = setup;
    const env = { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir };
    const created = await runCliCapturing(['clients', 'create', '--client-id', 'strict-app', '--client-secret', 'a-strict-secret-that-is-long-enough-1',
      '--redirect-uri', 'http://localhost:8765/callback', '--skip-consent', '--require-mfa', '--json'], env);
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ requireMfa: true });
    const strictRp = await discoverRp(server.issuer, 'strict-app', 'a-strict-secret-that-is-long-enough-1');

    const user = await createUser(server.services);
    const browser = createBrowser();
    // Signed in to the ordinary app with the password only.
    const plain = await startAuthorization(rp, browser);
    const plainDone = await submitPassword(browser, plain.page, user.email, password);
    expect((await plain.redeem(plainDone)).claims()).toMatchObject({ acr: 'urn:latchkey:acr:pwd' });

    // The strict app: the session has no second factor and the person none at all, so the password and enrolment.
    const strict = await startAuthorization(strictRp, browser);
    expect(strict.page.html).toContain('name="password"');
    // The session alone cannot skip the password and enrol a factor of its own (a stolen cookie would reach mfa).
    const uid = strict.page.url.match(/\/interaction\/([^/?]+)/)![1];
    const skipped = await browser.follow(`${server.issuer}/interaction/${uid}/mfa`);
    expect(skipped.status).toBe(400);
    expect(skipped.html).not.toContain('code class="secret"');
    const enrolPage = await submitPassword(browser, strict.page, user.email, password);
    const { finished } = await enrolDuringSignIn(browser, enrolPage, clock);
    expect((await strict.redeem(finished)).claims()).toMatchObject({ acr: mfaAcr, amr: ['pwd', 'otp', 'mfa'] });

    // Turned off again with clients update: a password-only session signs in to it without a code.
    const updated = await runCliCapturing(['clients', 'update', '--client-id', 'strict-app', '--require-mfa', 'false', '--json'], env);
    expect(JSON.parse(updated.stdout)).toMatchObject({ requireMfa: false });
  });

  it('steps up a password-only session of someone who has a factor with the code alone', async () => {
    const { server, rp, clock } = setup;
    await server.services.clients.register({
      clientId: 'strict-two', clientSecret: 'another-strict-secret-long-enough-22', redirectUris: ['http://localhost:8765/callback'],
      skipConsent: true, requireMfa: true,
    });
    const strictRp = await discoverRp(server.issuer, 'strict-two', 'another-strict-secret-long-enough-22');
    const user = await createUser(server.services);
    const browser = createBrowser();
    await signIn(rp, browser, { email: user.email, password });
    const started = await browser.submit(await browser.follow(`${server.issuer}/account/security`), 'form[action="/account/security/totp"]');
    const secret = shownSecret(started);
    await browser.submit(started, 'form[action="/account/security/totp/confirm"]', { code: totpCode(secret, clock.time), password });
    clock.time += step;

    const strict = await startAuthorization(strictRp, browser);
    expect(strict.page.html).toContain('name="code"');
    expect(strict.page.html).not.toContain('name="password"');
    const done = await submitCode(browser, strict.page, totpCode(secret, clock.time));
    expect((await strict.redeem(done)).claims()).toMatchObject({ acr: mfaAcr, amr: ['pwd', 'otp', 'mfa'] });
  });
});

describe('operators: users mfa and users mfa reset', () => {
  let setup: Awaited<ReturnType<typeof startServerWithClock>>;
  beforeAll(async () => {
    setup = await startServerWithClock();
  });
  afterAll(() => setup.server.close());

  it('lists an account\'s factors without secrets and removes them all, with an audit event', async () => {
    const { server, rp, clock } = setup;
    const env = { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir };
    const user = await createUser(server.services);
    const browser = createBrowser();
    await signIn(rp, browser, { email: user.email, password });
    const started = await browser.submit(await browser.follow(`${server.issuer}/account/security`), 'form[action="/account/security/totp"]');
    const secret = shownSecret(started);
    const codes = shownRecoveryCodes(await browser.submit(started, 'form[action="/account/security/totp/confirm"]', { code: totpCode(secret, clock.time), password }));
    clock.time += step;

    const listed = await runCliCapturing(['users', 'mfa', '--email', user.email], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('totp');
    expect(listed.stdout).toContain('recovery codes left: 10');
    const json = await runCliCapturing(['users', 'mfa', '--email', user.email, '--json'], env);
    expect(JSON.parse(json.stdout)).toMatchObject({ email: user.email, factors: [{ kind: 'totp' }], recoveryCodesLeft: 10 });
    for (const output of [listed.stdout, json.stdout]) {
      expect(output).not.toContain(secret);
      for (const code of codes) expect(output).not.toContain(code);
    }

    const reset = await runCliCapturing(['users', 'mfa', 'reset', '--email', user.email], env);
    expect(reset.code).toBe(0);
    expect(reset.stdout).toContain('removed 1 second factor(s) and 10 recovery code(s)');
    expect(await server.services.secondFactors.list(user.id)).toEqual({ factors: [], recoveryCodesLeft: 0 });
    const events = await runCliCapturing(['events', '--email', user.email, '--json'], env);
    expect(events.stdout).toContain('mfa.reset');
    // The person is told, through the outbox (the reset and its mail commit together).
    const outbox = await runCliCapturing(['mail', 'list', '--json'], env);
    expect(JSON.parse(outbox.stdout)).toEqual(expect.arrayContaining([
      expect.objectContaining({ to: user.email, subject: 'Your two-step sign-in was reset' }),
    ]));

    // The password alone signs in again; the old secret and codes are gone.
    const fresh = createBrowser();
    const flow = await startAuthorization(rp, fresh);
    expect(isAtCallback(await submitPassword(fresh, flow.page, user.email, password))).toBe(true);

    const unknown = await runCliCapturing(['users', 'mfa', 'reset', '--email', 'nobody@example.com'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('latchkey: no user with email nobody@example.com');
  });
});
