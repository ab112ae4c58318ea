import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, textOf, type Browser, type Page } from './support/browser.js';
import { runCliCapturing } from './support/cli.js';
import { createClient, createUser } from './support/fixtures.js';
import { authorize, discoverRp, redirectUri } from './support/rp.js';
import { startTestServer, testMailSettings, type TestServer } from './support/server.js';
import { linkIn, startSmtpServer, type ReceivedMail, type TestSmtpServer } from './support/smtp.js';

const chosen = 'my own long passphrase';
let smtp: TestSmtpServer;
let open: TestServer;
let closed: TestServer;
let rp: oidc.Configuration;

beforeAll(async () => {
  smtp = await startSmtpServer();
  open = await startTestServer({ mail: { ...testMailSettings, smtpUrl: smtp.url, registration: 'open', registrationEmailDomains: ['example.com', 'example.org'] } });
  closed = await startTestServer({ mail: { ...testMailSettings, smtpUrl: smtp.url } });
  const client = await createClient(open.services);
  rp = await discoverRp(open.issuer, client.clientId, client.clientSecret!);
});
afterAll(async () => {
  await open?.close();
  await closed?.close();
  await smtp?.close();
});

const to = (email: string, subject?: string) => (mail: ReceivedMail) => mail.envelopeTo.includes(email) && (subject === undefined || mail.subject === subject);

/** Walks to the login page of a new sign-in at the open server and returns it. */
async function loginPage(browser: Browser): Promise<Page> {
  const { page } = await authorize(rp, browser, { email: '', password: '' });
  return page;
}

async function signUpFrom(browser: Browser, login: Page, fields: Record<string, string>): Promise<Page> {
  const href = /href="([^"]*\/sign-up[^"]*)"/.exec(login.html)![1]!.replaceAll('&amp;', '&');
  const form = await browser.follow(new URL(href, open.issuer).href);
  return browser.submit(form, 'form[action="/sign-up"]', fields);
}

async function finishSignIn(browser: Browser, page: Page, email: string, password: string): Promise<Page> {
  let done = await browser.submit(page, 'form[action$="/login"]', { email, password }, redirectUri);
  if (done.url.includes('/interaction/') && done.html.includes('/confirm')) done = await browser.submit(done, 'form[action$="/confirm"]', {}, redirectUri);
  return done;
}

describe('invitations', () => {
  const cli = (server: TestServer, ...argv: string[]) => runCliCapturing(argv, { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir, ISSUER: server.issuer });

  it('creates the account without a password and mails a link that sets one, once', async () => {
    const email = `invited-${Date.now()}@example.com`;
    const result = await cli(open, 'users', 'invite', '--email', email, '--given-name', 'Grace', '--family-name', 'Hopper');
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain(`invited ${email}`);
    // No password works before the invitation is accepted.
    expect(await open.services.accounts.authenticate(email, '')).toBeUndefined();

    await open.services.mailSender.sendDue();
    const [mail] = await smtp.waitFor(1, to(email));
    expect(mail!.text).toContain('Hello Grace');
    const browser = createBrowser();
    const form = await browser.follow(linkIn(mail!, `${open.issuer}/invitation?token=`));
    const done = await browser.submit(form, 'form[action="/invitation"]', { password: chosen });
    // Signed in, on the account page (test/invitation-sign-in.test.ts).
    expect(textOf(done.html, 'h1')).toBe('Your account');
    const user = await open.services.accounts.authenticate(email, chosen);
    expect(user).toMatchObject({ givenName: 'Grace', emailVerified: true });
    expect((await browser.submit(form, 'form[action="/invitation"]', { password: 'another passphrase now' })).status).toBe(400);

    // Accepted: inviting again is refused, the forgotten-password page is the way now.
    const again = await cli(open, 'users', 'invite', '--email', email);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already has an account with a password');
  });

  it('re-sends an invitation, and the previous link stops working', async () => {
    const email = `reinvited-${Date.now()}@example.com`;
    expect((await cli(open, 'users', 'invite', '--email', email)).code).toBe(0);
    await open.services.mailSender.sendDue();
    const [first] = await smtp.waitFor(1, to(email));
    const resent = await cli(open, 'users', 'invite', '--email', email);
    expect(resent.stdout).toContain('new invitation link');
    await open.services.mailSender.sendDue();
    const [, second] = await smtp.waitFor(2, to(email));
    const browser = createBrowser();
    expect((await browser.follow(linkIn(first!, `${open.issuer}/invitation?token=`))).status).toBe(400);
    expect((await browser.follow(linkIn(second!, `${open.issuer}/invitation?token=`))).status).toBe(200);
  });

  it('lists the outbox with `latchkey mail list`', async () => {
    const listed = await cli(open, 'mail', 'list', '--json');
    expect(listed.code).toBe(0);
    const mails = JSON.parse(listed.stdout) as Array<{ status: string; kind: string }>;
    expect(mails.some((mail) => mail.kind === 'invitation' && mail.status === 'sent')).toBe(true);
  });
});

describe('sign-up', () => {
  it('creates an unverified account, holds its sign-in until the mailed link is clicked, then signs in to the app', async () => {
    const email = `new-${Date.now()}@example.com`;
    const browser = createBrowser();
    const login = await loginPage(browser);
    expect(login.html).toContain('Create an account');
    const answer = await signUpFrom(browser, login, { email, password: chosen, given_name: 'Alan', family_name: 'Turing' });
    expect(textOf(answer.html, 'h1')).toBe('Check your inbox');
    await open.services.recovery.settled();
    expect(await open.services.accounts.findByEmail(email)).toMatchObject({ emailVerified: false, isSelfRegistered: true });

    // Signing in before the address is verified: "check your inbox", not the app.
    const held = await finishSignIn(browser, await loginPage(browser), email, chosen);
    expect(held.status).toBe(200);
    expect(textOf(held.html, 'h1')).toBe('Check your inbox');
    // The button sends a fresh link, which replaces the first.
    const resent = await browser.submit(held, 'form[action="/email/verify/resend"]');
    expect(resent.html).toContain('We sent a new link');
    const mails = await smtp.waitFor(2, to(email, 'Confirm your email address'));
    expect((await browser.follow(linkIn(mails[0]!, `${open.issuer}/email/verify?token=`))).status).toBe(400);

    const confirm = await browser.follow(linkIn(mails[1]!, `${open.issuer}/email/verify?token=`));
    const back = await browser.submit(confirm, 'form[action="/email/verify"]');
    // Back to the sign-in that was held, which now goes through.
    expect(back.url).toMatch(/\/interaction\//);
    const done = await finishSignIn(browser, back, email, chosen);
    expect(done.url.startsWith(redirectUri)).toBe(true);
    expect(await open.services.accounts.findByEmail(email)).toMatchObject({ emailVerified: true });
  });

  it('answers a sign-up with an address that has an account like a new one, and mails its owner instead', async () => {
    const owner = await createUser(open.services);
    const fresh = `fresh-${Date.now()}@example.com`;
    const pages = [];
    for (const email of [owner.email, fresh]) {
      const browser = createBrowser();
      pages.push(await signUpFrom(browser, await loginPage(browser), { email, password: chosen, given_name: 'Eve', family_name: 'Mallory' }));
    }
    expect(pages.map((page) => page.status)).toEqual([200, 200]);
    expect(pages[0]!.html.replace(/value="[^"]*"/g, '')).toBe(pages[1]!.html.replace(/value="[^"]*"/g, ''));
    await open.services.recovery.settled();
    const [warning] = await smtp.waitFor(1, to(owner.email));
    expect(warning!.subject).toBe('Someone tried to create an account with your address');
    expect(await open.services.accounts.authenticate(owner.email, chosen)).toBeUndefined();
    await smtp.waitFor(1, to(fresh, 'Confirm your email address'));
  });

  it('refuses an address outside REGISTRATION_EMAIL_DOMAINS and a password that breaks the policy', async () => {
    const browser = createBrowser();
    const outside = await signUpFrom(browser, await loginPage(browser), { email: 'someone@elsewhere.net', password: chosen, given_name: 'A', family_name: 'B' });
    expect(outside.status).toBe(400);
    expect(textOf(outside.html, '.error')).toBe('Sign-up is open to addresses at example.com, example.org only.');
    const weak = await signUpFrom(browser, await loginPage(browser), { email: 'someone@example.org', password: 'short', given_name: 'A', family_name: 'B' });
    expect(weak.status).toBe(400);
    await open.services.recovery.settled();
    expect(await open.services.accounts.findByEmail('someone@elsewhere.net')).toBeUndefined();
    expect(await open.services.accounts.findByEmail('someone@example.org')).toBeUndefined();
  });

  it('has no sign-up with REGISTRATION=closed', async () => {
    const browser = createBrowser();
    const closedRp = await discoverRp(closed.issuer, (await createClient(closed.services)).clientId);
    const { page } = await authorize(closedRp, browser, { email: '', password: '' });
    expect(page.html).not.toContain('Create an account');
    expect((await browser.follow(`${closed.issuer}/sign-up`)).status).toBe(404);
    const posted = await browser.request(`${closed.issuer}/sign-up`, {
      method: 'POST', body: new URLSearchParams({ email: 'x@example.com', password: chosen, given_name: 'X', family_name: 'Y' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(posted.status).toBe(404);
  });

  it('lets an operator\'s unverified account sign in (REQUIRE_VERIFIED_EMAIL holds self-registered ones)', async () => {
    const user = await open.services.accounts.create({ email: `operator-made-${Date.now()}@example.com`, password: chosen });
    const browser = createBrowser();
    const done = await finishSignIn(browser, await loginPage(browser), user.email, chosen);
    expect(done.url.startsWith(redirectUri)).toBe(true);
  });
});
