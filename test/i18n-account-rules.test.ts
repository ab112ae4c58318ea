import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, textOf, type Browser, type Page } from './support/browser.js';
import { expectGerman } from './support/english.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, redirectUri } from './support/rp.js';
import { startTestServer, testMailSettings, type TestServer } from './support/server.js';
import { linkIn, startSmtpServer, type TestSmtpServer } from './support/smtp.js';

const firefox = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const german = { 'accept-language': 'de-DE,de;q=0.9' };
const cyrillicA = '\u0430';

const tooShort = 'Das Passwort muss mindestens 8 Zeichen haben.';
const tooCommon = 'Dieses Passwort gehört zu den am häufigsten verwendeten Passwörtern; wählen Sie ein anderes.';

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


/** The login page of an app's authorization request with `ui_locales=de`, in a browser that prefers English. */
async function loginAskedInGerman(): Promise<{ browser: Browser; login: Page }> {
  const browser = createBrowser({ headers: { 'accept-language': 'en' } });
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: redirectUri, scope: 'openid email', ui_locales: 'de', state: oidc.randomState(),
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  });
  const login = await browser.follow(url.href);
  expect(textOf(login.html, 'h1')).toBe('Anmelden');
  return { browser, login };
}

/** Follows the login page's link to `path` (forgot password, sign up). */
const followLink = (browser: Browser, page: Page, path: string) => {
  const href = new RegExp(`href="(${path}[^"]*)"`).exec(page.html)![1]!.replaceAll('&amp;', '&');
  return browser.follow(new URL(href, server.issuer).href);
};

/** A German browser signed in on the account page, through the hosted login. */
async function germanAccountPage(email: string, userAgent = firefox): Promise<{ browser: Browser; page: Page }> {
  const browser = createBrowser({ headers: { ...german, 'user-agent': userAgent } });
  const login = await browser.follow(`${server.issuer}/account`);
  const page = await browser.submit(login, 'form[action$="/login"]', { email, password });
  expect(page.url).toBe(`${server.issuer}/account`);
  return { browser, page };
}

describe('the account rules in the reader\'s language', () => {
  it('gives the password rules in German on the reset page, and the mail that led there is German too', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser({ headers: german });
    const forgot = await browser.follow(`${server.issuer}/password/forgot`);
    await browser.submit(forgot, 'form[action="/password/forgot"]', { email: user.email });
    const [mail] = await smtp.waitFor(1, (received) => received.envelopeTo.includes(user.email));
    const reset = await browser.follow(linkIn(mail!, `${server.issuer}/password/reset?token=`));

    const short = await browser.submit(reset, 'form[action="/password/reset"]', { password: 'kurz' });
    expect(short.status).toBe(400);
    expect(textOf(short.html, '.error')).toBe(tooShort);
    expectGerman(short);
    const common = await browser.submit(reset, 'form[action="/password/reset"]', { password: 'password1' });
    expect(textOf(common.html, '.error')).toBe(tooCommon);
    expectGerman(common);
  });

  it('gives the password rules in German on the invitation page', async () => {
    const email = `eingeladen-${Date.now()}@example.com`;
    await server.services.recovery.invitations.invite({ email, actor: 'cli' });
    const [mail] = await smtp.waitFor(1, (received) => received.envelopeTo.includes(email));
    const browser = createBrowser({ headers: german });
    const invitation = await browser.follow(linkIn(mail!, `${server.issuer}/invitation?token=`));
    const refused = await browser.submit(invitation, 'form[action="/invitation"]', { password: 'ist zu' });
    expect(refused.status).toBe(400);
    expect(textOf(refused.html, '.error')).toBe(tooShort);
    expectGerman(refused);
  });

  it('gives the password and email rules in German on the sign-up page', async () => {
    const browser = createBrowser({ headers: german });
    const form = await browser.follow(`${server.issuer}/sign-up`);
    const names = { given_name: 'Grete', family_name: 'Weiß' };
    const short = await browser.submit(form, 'form[action="/sign-up"]', { ...names, email: 'grete@example.com', password: 'kurz' });
    expect(short.status).toBe(400);
    expect(textOf(short.html, '.error')).toBe(tooShort);
    expectGerman(short);

    const invisible = await browser.submit(form, 'form[action="/sign-up"]', { ...names, email: 'gre\u200bte@example.com', password });
    expect(textOf(invisible.html, '.error')).toBe('Geben Sie eine gültige E-Mail-Adresse ein (sie enthält das unsichtbare Zeichen U+200B).');
    expectGerman(invisible);
    const mixed = await browser.submit(form, 'form[action="/sign-up"]', { ...names, email: `gr${cyrillicA}te@example.com`, password });
    expect(textOf(mixed.html, '.error')).toBe('Geben Sie eine gültige E-Mail-Adresse ein (der Teil vor dem @ mischt Buchstaben der Schriften Lateinisch und Kyrillisch).');
    expectGerman(mixed);
  });

  it('names the devices of the account page\'s sessions in German, and gives its password and email rules in German', async () => {
    const user = await createUser(server.services);
    await germanAccountPage(user.email, 'a device of its own kind/1.0');
    const { browser, page } = await germanAccountPage(user.email);
    expect(page.html).toContain('Firefox unter Linux');
    expect(page.html).toContain('Unbekannter Browser');
    expectGerman(page);

    const short = await browser.submit(page, 'form[action="/account/password"]', { current_password: password, new_password: 'kurz', confirm_password: 'kurz' });
    expect(short.status).toBe(400);
    expect(textOf(short.html, '#password-error')).toBe(tooShort);
    expectGerman(short);

    const invalid = await browser.submit(page, 'form[action="/account/email"]', { email: 'keine adresse' });
    expect(textOf(invalid.html, '#email-error')).toBe('„keine adresse“ ist keine gültige E-Mail-Adresse: sie enthält das Leerzeichen U+0020.');
    expectGerman(invalid);
    const same = await browser.submit(page, 'form[action="/account/email"]', { email: user.email });
    expect(textOf(same.html, '#email-error')).toBe(`${user.email} ist bereits Ihre E-Mail-Adresse.`);
    expectGerman(same);
  });

  it('keeps the language an app asked for (ui_locales=de) on the sign-up and forgot pages the sign-in links to', async () => {
    const { browser, login } = await loginAskedInGerman();
    const signUp = await followLink(browser, login, '/sign-up');
    expect(textOf(signUp.html, 'h1')).toBe('Konto erstellen');
    const short = await browser.submit(signUp, 'form[action="/sign-up"]', { given_name: 'Grete', family_name: 'Weiß', email: 'grete@example.com', password: 'kurz' });
    expect(textOf(short.html, '.error')).toBe(tooShort);
    expectGerman(short);

    const user = await createUser(server.services);
    const forgot = await followLink(browser, login, '/password/forgot');
    expectGerman(forgot);
    const sent = await browser.submit(forgot, 'form[action="/password/forgot"]', { email: user.email });
    expect(textOf(sent.html, 'h1')).toBe('Sehen Sie in Ihrem Posteingang nach');
    const [mail] = await smtp.waitFor(1, (received) => received.envelopeTo.includes(user.email));
    expect(mail!.subject).toBe('Passwort zurücksetzen');
  });
});
