import * as oidc from 'openid-client';
import { parse } from 'node-html-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountClientId } from '../src/account/account-client.js';
import { createBrowser, textOf, type Browser, type Page } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, signIn } from './support/rp.js';
import { startTestServer, testMailSettings, type TestServer } from './support/server.js';
import { linkIn, startSmtpServer, type TestSmtpServer } from './support/smtp.js';

const firefox = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const safariPhone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1';

// The services' clock (REAUTH_AFTER, link lifetimes, "last used"): moved forward by tests instead of waiting.
const clock = { offsetMs: 0 };
let server: TestServer;
let smtp: TestSmtpServer;
let app: { clientId: string; clientSecret: string };

beforeAll(async () => {
  smtp = await startSmtpServer();
  server = await startTestServer({ mail: { ...testMailSettings, smtpUrl: smtp.url } }, undefined, { now: () => Date.now() + clock.offsetMs });
  const clientSecret = 'a-test-secret-that-is-long-enough-to-pass';
  const registered = await createClient(server.services, { name: 'Notes', clientSecret });
  app = { clientId: registered.clientId, clientSecret };
});
afterAll(async () => {
  await server?.close();
  await smtp?.close();
});

const accountUrl = () => `${server.issuer}/account`;

/** Opens /account; signs in through the hosted login page when the browser has no session. */
async function openAccount(browser: Browser, email: string, secret = password): Promise<Page> {
  const page = await browser.follow(accountUrl());
  if (!page.html.includes('name="password"') || page.url.startsWith(accountUrl())) return page;
  return browser.submit(page, 'form[action$="/login"]', { email, password: secret });
}

async function signedInPerson(options: { userAgent?: string } = {}) {
  const user = await createUser(server.services);
  const browser = createBrowser({ headers: { 'user-agent': options.userAgent ?? firefox } });
  const page = await openAccount(browser, user.email);
  expect(page.url).toBe(accountUrl());
  return { user, browser, page };
}

/** A second browser of the same person, signed in to the app (a refresh token) and to the account page. */
async function secondDeviceWithApp(email: string, secret = password) {
  const browser = createBrowser({ headers: { 'user-agent': safariPhone } });
  const rp = await discoverRp(server.issuer, app.clientId, app.clientSecret);
  const { tokens } = await signIn(rp, browser, { email, password: secret, scope: 'openid email', consent: true });
  expect(tokens.refresh_token).toBeTruthy();
  return { browser, rp, refreshToken: tokens.refresh_token! };
}

const sessionUids = async (accountId: string) => (await server.services.sessions.list(accountId)).map((session) => session.uid);
const isSignedIn = async (browser: Browser) => (await browser.request(accountUrl())).status === 200;
const itemsOf = (page: Page, section: string) => parse(page.html.replaceAll('><', '> <')).querySelectorAll(`#${section} .item`).map((item) => item.text.replace(/\s+/g, ' ').trim());

describe('the account page', () => {
  it('sends a person without a session to the hosted sign-in with Latchkey\'s own client, and back to /account', async () => {
    const browser = createBrowser();
    const first = await browser.request(accountUrl());
    expect(first.status).toBe(303);
    const location = new URL(first.headers.get('location')!);
    expect(location.pathname).toBe('/auth');
    expect(location.searchParams.get('client_id')).toBe(accountClientId);
    expect(location.searchParams.get('state')).toBe('/account');
    const user = await createUser(server.services);
    const page = await openAccount(browser, user.email);
    expect(page.url).toBe(accountUrl());
    expect(textOf(page.html, '.lead')).toContain(user.email);
    expect(page.html).toContain('href="/account/security"');
    // The hosted pages' headers, and never cached.
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('cache-control')).toBe('no-store');
    // Latchkey's own client is not an app the person gave access to.
    expect(itemsOf(page, 'apps')).toEqual([]);
  });

  it('saves the given and family name', async () => {
    const { user, browser, page } = await signedInPerson();
    const saved = await browser.submit(page, 'form[action="/account/names"]', { given_name: 'Grace', family_name: 'Hopper' });
    expect(saved.url).toBe(`${accountUrl()}?done=names`);
    expect(saved.html).toContain('value="Grace"');
    expect(await server.services.accounts.findActive(user.id)).toMatchObject({ givenName: 'Grace', familyName: 'Hopper' });
  });

  it('lists the sessions with browser, IP, sign-in and last use, marks this device, and ends another one', async () => {
    const { user, browser } = await signedInPerson();
    const phone = createBrowser({ headers: { 'user-agent': safariPhone } });
    await openAccount(phone, user.email);
    const page = await browser.follow(accountUrl());
    const items = itemsOf(page, 'sessions');
    expect(items).toHaveLength(2);
    expect(items[0]).toMatch(/^Firefox on Linux This device IP \S+ · signed in \d{4}-\d\d-\d\d \d\d:\d\d UTC · last used \d{4}/);
    expect(items[1]).toContain('Safari on iOS');
    const ended = await browser.submit(page, '#sessions form[action="/account/sessions/end"]');
    expect(ended.url).toBe(`${accountUrl()}?done=session-ended`);
    expect(await isSignedIn(phone)).toBe(false);
    expect(await isSignedIn(browser)).toBe(true);
    expect(await sessionUids(user.id)).toHaveLength(1);
  });

  it('ends all other sessions and their apps\' refresh tokens, and keeps this one', async () => {
    const { user, browser } = await signedInPerson();
    const other = await secondDeviceWithApp(user.email);
    const page = await browser.follow(accountUrl());
    await browser.submit(page, '#end-others');
    expect(await isSignedIn(other.browser)).toBe(false);
    await expect(oidc.refreshTokenGrant(other.rp, other.refreshToken)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await isSignedIn(browser)).toBe(true);
  });

  it('lists the apps given access with their scopes, and revokes one: its refresh token stops working', async () => {
    const { user, browser } = await signedInPerson();
    const rp = await discoverRp(server.issuer, app.clientId, app.clientSecret);
    const { tokens } = await signIn(rp, browser, { email: user.email, password, scope: 'openid email', consent: true });
    const page = await browser.follow(accountUrl());
    expect(itemsOf(page, 'apps')).toEqual([expect.stringMatching(/^Notes Since \d{4}-.* UTC · openid, email Revoke access$/)]);
    const revoked = await browser.submit(page, 'form[action="/account/apps/revoke"]');
    expect(revoked.url).toBe(`${accountUrl()}?done=app-revoked`);
    expect(itemsOf(revoked, 'apps')).toEqual([]);
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await isSignedIn(browser)).toBe(true);
  });

  it('shows recent security events: sign-ins and failed passwords', async () => {
    const { user, browser } = await signedInPerson();
    const stranger = createBrowser();
    const login = await stranger.follow(accountUrl());
    await stranger.submit(login, 'form[action$="/login"]', { email: user.email, password: 'not the password' });
    await server.services.audit.settled();
    const items = itemsOf(await browser.follow(accountUrl()), 'events');
    expect(items.some((item) => item.startsWith('Signed in'))).toBe(true);
    expect(items.some((item) => item.startsWith('Wrong password entered'))).toBe(true);
  });
});

describe('changing the password', () => {
  it('needs the current password, ends the other sessions and their refresh tokens, keeps this one and mails the person', async () => {
    const { user, browser, page } = await signedInPerson();
    const other = await secondDeviceWithApp(user.email);
    const wrong = await browser.submit(page, 'form[action="/account/password"]', { current_password: 'wrong password', new_password: 'a brand new passphrase', confirm_password: 'a brand new passphrase' });
    expect(wrong.status).toBe(400);
    expect(textOf(wrong.html, '#password-error')).toBe('Your current password is not correct.');
    expect(await isSignedIn(other.browser)).toBe(true);

    const weak = await browser.submit(wrong, 'form[action="/account/password"]', { current_password: password, new_password: 'short', confirm_password: 'short' });
    expect(weak.status).toBe(400);
    expect(textOf(weak.html, '#password-error')).toMatch(/at least/);

    const changed = await browser.submit(weak, 'form[action="/account/password"]', { current_password: password, new_password: 'a brand new passphrase', confirm_password: 'a brand new passphrase' });
    expect(changed.url).toBe(`${accountUrl()}?done=password`);
    expect(await isSignedIn(browser)).toBe(true);
    expect(await isSignedIn(other.browser)).toBe(false);
    await expect(oidc.refreshTokenGrant(other.rp, other.refreshToken)).rejects.toMatchObject({ error: 'invalid_grant' });
    const [mail] = await smtp.waitFor(1, (m) => m.envelopeTo.includes(user.email) && m.subject === 'Your password was changed');
    expect(mail!.text).toContain('Every other session');
    expect(await server.services.accounts.authenticate(user.email, 'a brand new passphrase')).toMatchObject({ id: user.id });
  });
});

describe('changing the email', () => {
  it('mails a single-use link to the new address; following it changes the email and tells the old address', async () => {
    const { user, browser, page } = await signedInPerson();
    const newEmail = `new-${user.email}`;
    const sent = await browser.submit(page, 'form[action="/account/email"]', { email: newEmail });
    expect(sent.url).toBe(`${accountUrl()}?done=email-sent`);
    // Nothing changes before the link is followed.
    expect((await server.services.accounts.findActive(user.id))?.email).toBe(user.email);
    const [mail] = await smtp.waitFor(1, (m) => m.envelopeTo.includes(newEmail));
    const link = linkIn(mail!, `${server.issuer}/account/email/confirm?token=`);
    // The stored row holds only the token's hash.
    const token = new URL(link).searchParams.get('token')!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await server.database('account_tokens').where({ token_hash: token }).first()).toBeUndefined();

    // Any browser (the mail may be read elsewhere): the page asks first, the POST changes.
    const mailReader = createBrowser();
    const confirmPage = await mailReader.follow(link);
    expect(textOf(confirmPage.html, '.lead')).toContain(newEmail);
    const done = await mailReader.submit(confirmPage, 'form[action="/account/email/confirm"]');
    expect(done.status).toBe(200);
    expect((await server.services.accounts.findActive(user.id))?.email).toBe(newEmail);
    const [notice] = await smtp.waitFor(1, (m) => m.envelopeTo.includes(user.email) && m.subject === 'Your email address was changed');
    expect(notice!.text).toContain(newEmail);
    // Single use.
    expect((await mailReader.submit(confirmPage, 'form[action="/account/email/confirm"]')).status).toBe(400);
    expect((await mailReader.follow(link)).status).toBe(400);
    expect(await server.services.accounts.authenticate(newEmail, password)).toMatchObject({ id: user.id });
    expect(await isSignedIn(browser)).toBe(true);
  });

  it('answers an address another account has, or one that looks like it, as any other: its owner is told, the asker learns nothing', async () => {
    const unique = Date.now();
    const taken = await createUser(server.services);
    const imitated = await createUser(server.services, { email: `ace${unique}@example.com` });
    const { user, page, browser } = await signedInPerson();
    const free = await browser.submit(page, 'form[action="/account/email"]', { email: `free-${user.email}` });
    // The same answer for a free address, a taken one (in other case) and a Cyrillic look-alike of another.
    for (const [asked, owner] of [[taken.email.toUpperCase(), taken], [`\u0430\u0441\u0435${unique}@example.com`, imitated]] as const) {
      const answer = await browser.submit(page, 'form[action="/account/email"]', { email: asked });
      expect(answer.status).toBe(free.status);
      expect(answer.url).toBe(free.url);
      expect(answer.html).not.toContain(owner.email);
      const [warning] = await smtp.waitFor(1, (m) => m.envelopeTo.includes(owner.email) && m.subject === 'Someone tried to use your address for another account');
      expect(warning!.text).not.toContain(user.email);
      expect(warning!.text).not.toMatch(/https?:\/\/\S+token=/);
    }
    // Nothing was sent to the asked-for addresses but the free one's link, and nothing changed.
    expect(smtp.received.filter((m) => m.envelopeTo.includes(`\u0430\u0441\u0435${unique}@example.com`))).toEqual([]);
    expect((await server.services.accounts.findActive(user.id))?.email).toBe(user.email);
    expect(await server.database('account_tokens').where({ user_id: user.id, purpose: 'email-change' })).toHaveLength(1);
  });

  it('limits the links and warnings one address can be sent (PASSWORD_RESET_MAX_PER_ADDRESS_PER_HOUR), known or not', async () => {
    const owner = await createUser(server.services);
    const asker = await signedInPerson();
    const another = await signedInPerson();
    const limit = server.config.mail.resetsPerAddressPerHour;
    const answers = [];
    for (let attempt = 0; attempt <= limit; attempt += 1) {
      // From two accounts: the limit is the inbox's, not the asker's.
      const { browser, page } = attempt % 2 === 0 ? asker : another;
      answers.push(await browser.submit(page, 'form[action="/account/email"]', { email: owner.email }));
    }
    expect(answers.slice(0, limit).map((answer) => answer.status)).toEqual(Array(limit).fill(200));
    const refused = answers[limit]!;
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(textOf(refused.html, '#email-error')).toMatch(/Too many requests/);
    await smtp.waitFor(limit, (m) => m.envelopeTo.includes(owner.email));
    // The same limit for an address nobody has: a refusal tells nothing.
    const nobody = `nobody-${owner.email}`;
    const unknown = [];
    for (let attempt = 0; attempt <= limit; attempt += 1) unknown.push((await asker.browser.submit(asker.page, 'form[action="/account/email"]', { email: nobody })).status);
    expect(unknown).toEqual([...Array(limit).fill(200), 429]);
  });

  it('asks for the password again once the sign-in is older than REAUTH_AFTER', async () => {
    const { user, browser, page } = await signedInPerson();
    expect(page.html).not.toContain('id="email_password"');
    clock.offsetMs = (server.config.reauthAfterSeconds + 60) * 1000;
    try {
      const stale = await browser.follow(accountUrl());
      expect(stale.html).toContain('id="email_password"');
      const noPassword = await browser.submit(stale, 'form[action="/account/email"]', { email: `late-${user.email}` });
      expect(noPassword.status).toBe(400);
      const wrong = await browser.submit(stale, 'form[action="/account/email"]', { email: `late-${user.email}`, password: 'wrong password' });
      expect(textOf(wrong.html, '#email-error')).toBe('Your current password is not correct.');
      const right = await browser.submit(stale, 'form[action="/account/email"]', { email: `late-${user.email}`, password });
      expect(right.url).toBe(`${accountUrl()}?done=email-sent`);
    } finally {
      clock.offsetMs = 0;
    }
  });
});

describe('the consent page', () => {
  it('says who is signed in, with a way to sign in as someone else', async () => {
    const { user, browser } = await signedInPerson();
    const rp = await discoverRp(server.issuer, app.clientId, app.clientSecret);
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: 'http://localhost:8765/callback', scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256', state: 'st', login_hint: user.email,
    });
    const consent = await browser.follow(url.href);
    expect(textOf(consent.html, 'p.detail')).toContain(`Signed in as ${user.email}`);
    const switchLink = new URL(parse(consent.html).querySelector('p.detail a')!.getAttribute('href')!, server.issuer);
    expect(switchLink.pathname).toBe('/auth');
    expect(switchLink.searchParams.get('prompt')).toBe('login');
    expect(switchLink.searchParams.get('client_id')).toBe(app.clientId);
    expect(switchLink.searchParams.has('login_hint')).toBe(false);
    // It leads to the login form, with no one's email filled in.
    const login = await browser.follow(switchLink.href);
    expect(login.html).toContain('name="password"');
    expect(parse(login.html).querySelector('#email')?.getAttribute('value') ?? '').toBe('');
  });
});

describe('attacks on the account page', () => {
  const forms = ['/account/names', '/account/password', '/account/email', '/account/sessions/end', '/account/sessions/end-others', '/account/apps/revoke'];

  it('refuses every account form without its CSRF token, or with the token of another session, and changes nothing', async () => {
    const { user, browser } = await signedInPerson();
    const other = await secondDeviceWithApp(user.email);
    const otherPage = await openAccount(other.browser, user.email);
    const otherToken = parse(otherPage.html).querySelector('input[name="csrf"]')!.getAttribute('value')!;
    const [, otherUid] = await sessionUids(user.id);
    for (const path of forms) {
      for (const csrf of [undefined, otherToken, '']) {
        const body = new URLSearchParams({
          given_name: 'Mallory', current_password: password, new_password: 'mallory was here', confirm_password: 'mallory was here',
          email: `mallory-${user.email}`, session: otherUid!, client: app.clientId, ...(csrf === undefined ? {} : { csrf }),
        });
        const answer = await browser.request(`${server.issuer}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
        expect(answer.status, `${path} with csrf ${csrf}`).toBe(400);
        expect(await answer.text()).toContain('did not come from this site');
      }
    }
    expect(await server.services.accounts.findActive(user.id)).toMatchObject({ givenName: 'Ada', email: user.email });
    expect(await server.services.accounts.authenticate(user.email, password)).toBeTruthy();
    expect(await sessionUids(user.id)).toHaveLength(2);
    expect(await isSignedIn(other.browser)).toBe(true);
    await expect(oidc.refreshTokenGrant(other.rp, other.refreshToken)).resolves.toHaveProperty('access_token');
  });

  it('never lets person A end B\'s session or revoke the app B gave access to', async () => {
    const a = await signedInPerson();
    const b = await createUser(server.services);
    const bDevice = await secondDeviceWithApp(b.email);
    const [bUid] = await sessionUids(b.id);
    const page = await a.browser.follow(accountUrl());
    const csrf = parse(page.html).querySelector('input[name="csrf"]')!.getAttribute('value')!;
    const post = (path: string, fields: Record<string, string>) => a.browser.request(`${server.issuer}${path}`, {
      method: 'POST', body: new URLSearchParams({ csrf, ...fields }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect((await post('/account/sessions/end', { session: bUid! })).status).toBe(400);
    expect((await post('/account/apps/revoke', { client: app.clientId })).status).toBe(400);
    expect((await post('/account/apps/revoke', { client: accountClientId })).status).toBe(400);
    expect(await isSignedIn(bDevice.browser)).toBe(true);
    await expect(oidc.refreshTokenGrant(bDevice.rp, bDevice.refreshToken)).resolves.toHaveProperty('access_token');
    expect(await sessionUids(b.id)).toEqual([bUid]);
  });

  it('does not accept a session from before a password change, copied cookies and form included', async () => {
    const { user, browser, page } = await signedInPerson();
    const thief = createBrowser();
    for (const cookie of await browser.jar.getCookies(server.issuer)) await thief.jar.setCookie(cookie.clone()!, server.issuer);
    const stolenPage = await thief.follow(accountUrl());
    expect(stolenPage.url).toBe(accountUrl());
    // The person signs in again elsewhere and changes the password there.
    const fresh = createBrowser();
    const freshPage = await openAccount(fresh, user.email);
    await fresh.submit(freshPage, 'form[action="/account/password"]', { current_password: password, new_password: 'another new passphrase', confirm_password: 'another new passphrase' });
    for (const copy of [browser, thief]) {
      const again = await copy.request(accountUrl());
      expect(again.status).toBe(303);
      expect(new URL(again.headers.get('location')!).pathname).toBe('/auth');
    }
    const replayed = await thief.submit(stolenPage, 'form[action="/account/names"]', { given_name: 'Thief' }, `${server.issuer}/auth`);
    expect(new URL(replayed.url).pathname).toBe('/auth');
    expect((await server.services.accounts.findActive(user.id))?.givenName).toBe('Ada');
    expect(page.url).toBe(accountUrl());
  });

  it('refuses a session that a request in flight saved again after the password change ended it, here and for single sign-on', async () => {
    const { user, browser, page } = await signedInPerson();
    const other = await secondDeviceWithApp(user.email);
    const [, otherUid] = await sessionUids(user.id);
    const otherRow = await server.database('oidc_payloads').where({ model: 'Session', uid: otherUid }).first();
    await browser.submit(page, 'form[action="/account/password"]', { current_password: password, new_password: 'a racing new passphrase', confirm_password: 'a racing new passphrase' });
    // oidc-provider saves a session at the end of every request that used it: one in flight during the change
    // writes the deleted row back, as this does (for a session signed in a little earlier: the sign-in time is kept
    // to the second, and this test runs within one).
    const payload = JSON.parse(otherRow.payload);
    await server.database('oidc_payloads').insert({ ...otherRow, payload: JSON.stringify({ ...payload, loginTs: payload.loginTs - 5 }) });
    expect(await sessionUids(user.id)).toHaveLength(2);
    const again = await other.browser.request(accountUrl());
    expect(again.status).toBe(303);
    // Single sign-on into the app asks for the password instead of issuing a code.
    const rp = await discoverRp(server.issuer, app.clientId, app.clientSecret);
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: 'http://localhost:8765/callback', scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256', state: 'st',
    });
    const sso = await other.browser.follow(url.href, {}, 'http://localhost:8765/callback');
    expect(sso.url, `${sso.status} ${sso.html.slice(0, 600)}`).toContain('/interaction/');
    expect(sso.html).toContain('name="password"');
    // The session that made the change is still signed in, to the account page and to apps.
    expect(await isSignedIn(browser)).toBe(true);
    // (this browser never used the app: it is asked for consent, not for a password)
    const mine = await browser.follow(url.href, {}, 'http://localhost:8765/callback');
    expect(mine.html).toContain('Allow access?');
    expect(mine.html).not.toContain('name="password"');
  });

  it('sends a missing or expired session to sign in first, for pages and forms alike', async () => {
    const { user, browser, page } = await signedInPerson();
    const anonymous = createBrowser();
    const posted = await anonymous.request(`${server.issuer}/account/names`, {
      method: 'POST', body: new URLSearchParams({ given_name: 'X' }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(posted.status).toBe(303);
    expect(new URL(posted.headers.get('location')!).searchParams.get('client_id')).toBe(accountClientId);
    // Expire the stored session, as the clock would.
    await server.database('oidc_payloads').where({ model: 'Session', account_id: user.id }).update({ expires_at: Date.now() - 1000 });
    expect((await browser.request(accountUrl())).status).toBe(303);
    const replayed = await browser.submit(page, 'form[action="/account/names"]', { given_name: 'Late' }, `${server.issuer}/auth`);
    expect(new URL(replayed.url).pathname).toBe('/auth');
    expect((await server.services.accounts.findActive(user.id))?.givenName).toBe('Ada');
  });

  it('answers a forged return path or a cancelled sign-in with a page, never a redirect elsewhere', async () => {
    const browser = createBrowser();
    for (const state of ['https://evil.example/', '//evil.example', '/account/../admin']) {
      const answer = await browser.request(`${server.issuer}/account/signed-in?${new URLSearchParams({ code: 'x', state })}`);
      expect(answer.headers.get('location')).toBe('/account');
    }
    const cancelled = await browser.request(`${server.issuer}/account/signed-in?error=access_denied&state=/account`);
    expect(cancelled.status).toBe(400);
  });
});
