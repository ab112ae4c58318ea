import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, textOf, type Browser, type Page } from './support/browser.js';
import { englishWordsOn, expectGerman } from './support/english.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, signIn } from './support/rp.js';
import { startTestServer, testMailSettings, type TestServer } from './support/server.js';
import { linkIn, startSmtpServer, type ReceivedMail, type TestSmtpServer } from './support/smtp.js';

const german = { 'accept-language': 'de' };
let smtp: TestSmtpServer;
let server: TestServer;
let rp: oidc.Configuration;

beforeAll(async () => {
  smtp = await startSmtpServer();
  server = await startTestServer({ mail: { ...testMailSettings, smtpUrl: smtp.url, registration: 'open' } });
  const client = await createClient(server.services, { name: 'Gästebuch' });
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(async () => {
  await server?.close();
  await smtp?.close();
});

/** Every mail of a German walk through a flow: German from the first word to the last. */
function expectGermanMail(mail: ReceivedMail) {
  expect(englishWordsOn(String(mail.html)), mail.subject).toEqual([]);
  expect(englishWordsOn(`<body>${mail.text}</body>`), mail.subject).toEqual([]);
}

async function accountPage(email: string): Promise<{ browser: Browser; page: Page }> {
  const browser = createBrowser({ headers: german });
  const login = await browser.follow(`${server.issuer}/account`);
  const page = await browser.submit(login, 'form[action$="/login"]', { email, password });
  expect(page.url).toBe(`${server.issuer}/account`);
  return { browser, page };
}

describe('German from the first page to the last mail', () => {
  it('the account page: its notices, its refusals, the email change with its mails and pages, the password change mail', async () => {
    const user = await createUser(server.services);
    await signIn(rp, createBrowser({ headers: german }), { email: user.email, password, scope: 'openid email', consent: true });
    await accountPage(user.email);
    const { browser, page } = await accountPage(user.email);
    expectGerman(page);

    const names = await browser.submit(page, 'form[action="/account/names"]', { given_name: 'Grete', family_name: 'Weiß' });
    const mismatch = await browser.submit(page, 'form[action="/account/password"]', { current_password: password, new_password: 'ein neuer langer Satz', confirm_password: 'ein anderer' });
    const wrong = await browser.submit(page, 'form[action="/account/password"]', { current_password: 'falsch', new_password: 'ein neuer langer Satz', confirm_password: 'ein neuer langer Satz' });
    const same = await browser.submit(page, 'form[action="/account/email"]', { email: user.email });
    const notYours = await browser.submit(page, '#sessions form[action="/account/sessions/end"]', { session: 'keine-sitzung' });
    expect(notYours.status).toBe(400);
    expect(textOf(same.html, '#email-error')).toBe(`${user.email} ist bereits Ihre E-Mail-Adresse.`);
    const revoked = await browser.submit(page, 'form[action="/account/apps/revoke"]');
    const ended = await browser.submit(revoked, '#sessions form[action="/account/sessions/end"]');
    expectGerman(names, mismatch, wrong, same, notYours, revoked, ended);

    const newEmail = `neu-${user.email}`;
    const sent = await browser.submit(ended, 'form[action="/account/email"]', { email: newEmail });
    expectGerman(sent);
    const [link] = await smtp.waitFor(1, (mail) => mail.envelopeTo.includes(newEmail));
    expectGermanMail(link!);
    const reader = createBrowser({ headers: german });
    const confirm = await reader.follow(linkIn(link!, `${server.issuer}/account/email/confirm?token=`));
    const changed = await reader.submit(confirm, 'form[action="/account/email/confirm"]');
    const usedUp = await reader.submit(confirm, 'form[action="/account/email/confirm"]');
    expect(usedUp.status).toBe(400);
    expectGerman(confirm, changed, usedUp);
    expectGermanMail((await smtp.waitFor(1, (mail) => mail.envelopeTo.includes(user.email)))[0]!);

    const passwordChanged = await browser.submit(sent, 'form[action="/account/password"]', { current_password: password, new_password: 'ein neuer langer Satz', confirm_password: 'ein neuer langer Satz' });
    expectGerman(passwordChanged);
    expectGermanMail((await smtp.waitFor(2, (mail) => mail.envelopeTo.includes(newEmail)))[1]!);
  });

  it('sign-up: the verification mail, its page and the notice; the warning mail to an address that has an account', async () => {
    const browser = createBrowser({ headers: german });
    const form = await browser.follow(`${server.issuer}/sign-up`);
    const email = `neu-${Date.now()}@example.com`;
    const fields = { given_name: 'Grete', family_name: 'Weiß', password };
    const sent = await browser.submit(form, 'form[action="/sign-up"]', { ...fields, email });
    expectGerman(form, sent);
    const [verify] = await smtp.waitFor(1, (mail) => mail.envelopeTo.includes(email));
    expectGermanMail(verify!);
    const confirm = await browser.follow(linkIn(verify!, `${server.issuer}/email/verify?token=`));
    const confirmed = await browser.submit(confirm, 'form[action="/email/verify"]');
    const usedUp = await browser.submit(confirm, 'form[action="/email/verify"]');
    expectGerman(confirm, confirmed, usedUp);

    await browser.submit(form, 'form[action="/sign-up"]', { ...fields, email });
    const warnings = await smtp.waitFor(2, (mail) => mail.envelopeTo.includes(email));
    expectGermanMail(warnings[1]!);
  });

  it('the reset: its mail, the page, the notice after it, and the mail that says the password changed', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser({ headers: german });
    const forgot = await browser.follow(`${server.issuer}/password/forgot`);
    await browser.submit(forgot, 'form[action="/password/forgot"]', { email: user.email });
    const [reset] = await smtp.waitFor(1, (mail) => mail.envelopeTo.includes(user.email));
    expectGermanMail(reset!);
    const page = await browser.follow(linkIn(reset!, `${server.issuer}/password/reset?token=`));
    const done = await browser.submit(page, 'form[action="/password/reset"]', { password: 'ein neuer langer Satz' });
    const usedUp = await browser.submit(page, 'form[action="/password/reset"]', { password: 'ein neuer langer Satz' });
    expectGerman(page, done, usedUp);
    const mails = await smtp.waitFor(2, (mail) => mail.envelopeTo.includes(user.email));
    expectGermanMail(mails[1]!);
  });
});
