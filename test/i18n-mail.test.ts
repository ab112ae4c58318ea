import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, textOf } from './support/browser.js';
import { englishWordsOn } from './support/english.js';
import { createUser } from './support/fixtures.js';
import { startTestServer, testMailSettings, type TestServer } from './support/server.js';
import { linkIn, startSmtpServer, type TestSmtpServer } from './support/smtp.js';

let smtp: TestSmtpServer;
let server: TestServer;

beforeAll(async () => {
  smtp = await startSmtpServer();
  server = await startTestServer({ mail: { ...testMailSettings, smtpUrl: smtp.url, registration: 'open' } });
});
afterAll(async () => {
  await server?.close();
  await smtp?.close();
});

describe('the recovery pages and the mails in the reader\'s language', () => {
  it('mails a reset link asked for on a German page in German, and shows the reset pages in German', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser({ headers: { 'accept-language': 'de-AT, en;q=0.3' } });
    const form = await browser.follow(`${server.issuer}/password/forgot`);
    expect(textOf(form.html, 'h1')).toBe('Passwort vergessen?');
    const empty = await browser.submit(form, 'form[action="/password/forgot"]', { email: 'not an address' });
    expect(textOf(empty.html, '.error')).toBe('Geben Sie die E-Mail-Adresse Ihres Kontos ein.');
    const sent = await browser.submit(form, 'form[action="/password/forgot"]', { email: user.email });
    expect(textOf(sent.html, 'h1')).toBe('Sehen Sie in Ihrem Posteingang nach');

    const [mail] = await smtp.waitFor(1, (received) => received.envelopeTo.includes(user.email));
    expect(mail!.subject).toBe('Passwort zurücksetzen');
    expect(mail!.text).toContain('Der Link funktioniert einmal, 30 Minuten lang.');
    expect(mail!.html).toContain('<html lang="de">');
    expect(mail!.html).toContain('Neues Passwort wählen');

    const reset = await browser.follow(linkIn(mail!, `${server.issuer}/password/reset?token=`));
    expect(textOf(reset.html, 'h1')).toBe('Neues Passwort wählen');
    expect(textOf(reset.html, 'label[for="password"]')).toBe('Neues Passwort');
    for (const page of [form, empty, sent, reset]) expect(englishWordsOn(page.html)).toEqual([]);
    expect(englishWordsOn(String(mail!.html))).toEqual([]);
    expect(englishWordsOn(`<body>${mail!.text}</body>`)).toEqual([]);
  });

  it('shows the sign-up page and its problems in German', async () => {
    const browser = createBrowser({ headers: { 'accept-language': 'de' } });
    const form = await browser.follow(`${server.issuer}/sign-up`);
    expect(textOf(form.html, 'h1')).toBe('Konto erstellen');
    const refused = await browser.submit(form, 'form[action="/sign-up"]', { email: 'neu@example.com', given_name: '', family_name: 'X', password: 'long enough passphrase' });
    expect(textOf(refused.html, '.error')).toBe('Geben Sie Ihren Vornamen ein.');
    for (const page of [form, refused]) expect(englishWordsOn(page.html)).toEqual([]);
  });

  it('mails an invitation made outside any request (the CLI) in English', async () => {
    const email = `eingeladen-${Date.now()}@example.com`;
    await server.services.recovery.invitations.invite({ email, givenName: 'Grete', familyName: 'Weiß', actor: 'cli' });
    const [mail] = await smtp.waitFor(1, (received) => received.envelopeTo.includes(email));
    expect(mail!.subject).toBe('You are invited: choose your password');
    expect(mail!.text).toContain('Hello Grete, an account was created for you');
  });
});
