import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, textOf, type Browser, type Page } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { authorize, discoverRp, redirectUri, signIn } from './support/rp.js';
import { startTestServer, testMailSettings, type TestServer } from './support/server.js';
import { linkIn, startSmtpServer, type TestSmtpServer } from './support/smtp.js';

const clock = { time: Date.now() };
const lines: string[] = [];
const newPassword = 'a brand new passphrase for ada';
let smtp: TestSmtpServer;
let server: TestServer;
let rp: oidc.Configuration;

beforeAll(async () => {
  smtp = await startSmtpServer();
  server = await startTestServer({ mail: { ...testMailSettings, smtpUrl: smtp.url, resetsPerAddressPerHour: 100 } }, undefined, {
    logDestination: { write: (line: string) => void lines.push(line) },
    now: () => clock.time,
  });
  const client = await createClient(server.services);
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(async () => {
  await server?.close();
  await smtp?.close();
});

const resetMails = (email: string) => (mail: { envelopeTo: string[]; subject?: string }) => mail.envelopeTo.includes(email) && mail.subject === 'Reset your password';

/** Opens the forgot-password page (from `from`, the login page, when given), asks for a link and returns the answer. */
async function askForLink(browser: Browser, email: string, from?: Page): Promise<Page> {
  const href = from ? /href="([^"]*\/password\/forgot[^"]*)"/.exec(from.html)![1]!.replaceAll('&amp;', '&') : '/password/forgot';
  const form = await browser.follow(new URL(href, server.issuer).href);
  expect(form.status).toBe(200);
  return browser.submit(form, 'form[action="/password/forgot"]', { email });
}

async function receivedLink(email: string, count = 1): Promise<string> {
  const mails = await smtp.waitFor(count, resetMails(email));
  return linkIn(mails[count - 1]!, `${server.issuer}/password/reset?token=`);
}

describe('forgot password', () => {
  it('walks from the login page to a mailed link, a new password, and back to the app\'s sign-in', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    // A wrong guess first: the login page (with its error) is where the person looks for help.
    const { page: login } = await authorize(rp, browser, { email: user.email, password: 'not known yet' });
    expect(login.html).toContain('Forgot your password?');
    const uid = /action="\/interaction\/([^/"]+)\/login"/.exec(login.html)![1];

    const answer = await askForLink(browser, user.email, login);
    expect(answer.status).toBe(200);
    expect(textOf(answer.html, 'p.lead')).toBe('If an account exists for that address, we sent a link to it. Check your inbox (and your spam folder).');

    const link = await receivedLink(user.email);
    const form = await browser.follow(link);
    expect(form.html).toContain('Choose a new password');
    const back = await browser.submit(form, 'form[action="/password/reset"]', { password: newPassword });
    // Back on the sign-in the person started from: the login page of the same interaction.
    expect(back.url).toBe(`${server.issuer}/interaction/${uid}`);
    let done = await browser.submit(back, 'form[action$="/login"]', { email: user.email, password: newPassword }, redirectUri);
    if (done.url.includes('/interaction/')) done = await browser.submit(done, 'form[action$="/confirm"]', {}, redirectUri);
    expect(done.url.startsWith(redirectUri)).toBe(true);

    const [changed] = await smtp.waitFor(1, (mail) => mail.envelopeTo.includes(user.email) && mail.subject === 'Your password was changed');
    expect(changed!.text).toContain('was changed');
    await server.services.audit.settled();
    const events = (await server.database('audit_events').where({ account_id: user.id })).map((row) => row.type);
    expect(events).toEqual(expect.arrayContaining(['password_reset.requested', 'user.password_changed']));
  });

  it('answers an unknown address and a disabled account exactly like a known one, and mails neither', async () => {
    const known = await createUser(server.services);
    const disabled = await createUser(server.services);
    await server.services.accounts.disable(disabled.email);
    const pages = [];
    for (const email of [known.email, 'nobody-here@example.com', disabled.email]) pages.push(await askForLink(createBrowser(), email));
    expect(new Set(pages.map((page) => page.status))).toEqual(new Set([200]));
    const bodies = pages.map((page) => page.html.replace(/name="csrf" value="[^"]*"/, ''));
    expect(bodies[1]).toBe(bodies[0]);
    expect(bodies[2]).toBe(bodies[0]);
    await server.services.recovery.settled();
    await smtp.waitFor(1, resetMails(known.email));
    await server.services.mailSender.sendDue();
    expect(smtp.received.filter((mail) => mail.envelopeTo.includes('nobody-here@example.com') || mail.envelopeTo.includes(disabled.email))).toEqual([]);
  });

  it('refuses a link used twice, an expired link, and an older link once a newer one was sent', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    await askForLink(browser, user.email);
    const first = await receivedLink(user.email, 1);
    await askForLink(browser, user.email);
    const second = await receivedLink(user.email, 2);
    expect(second).not.toBe(first);

    const old = await browser.follow(first);
    expect(old.status).toBe(400);
    expect(old.html).toContain('Link no longer valid');

    const form = await browser.follow(second);
    const used = await browser.submit(form, 'form[action="/password/reset"]', { password: newPassword });
    expect(used.status).toBe(200);
    const again = await browser.submit(form, 'form[action="/password/reset"]', { password: 'yet another passphrase here' });
    expect(again.status).toBe(400);
    expect(again.html).toContain('Link no longer valid');
    // The first submission's password is the one that holds.
    expect(await server.services.accounts.authenticate(user.email, newPassword)).toBeDefined();

    await askForLink(browser, user.email);
    const third = await receivedLink(user.email, 3);
    clock.time += testMailSettings.passwordResetTtlSeconds * 1000 + 1;
    expect((await browser.follow(third)).status).toBe(400);
  });

  it('keeps the link when the new password breaks the policy', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    await askForLink(browser, user.email);
    const form = await browser.follow(await receivedLink(user.email));
    const refused = await browser.submit(form, 'form[action="/password/reset"]', { password: 'short' });
    expect(refused.status).toBe(400);
    expect(textOf(refused.html, '.error')).toMatch(/at least 8/);
    const accepted = await browser.submit(refused, 'form[action="/password/reset"]', { password: newPassword });
    expect(accepted.status).toBe(200);
  });

  it('lets only one of two submissions of one link at the same moment set a password', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    await askForLink(browser, user.email);
    const form = await browser.follow(await receivedLink(user.email));
    const results = await Promise.all(['first passphrase for ada', 'second passphrase for ada'].map((candidate) => browser.submit(form, 'form[action="/password/reset"]', { password: candidate })));
    expect(results.map((page) => page.status).sort()).toEqual([200, 400]);
    const winner = results.findIndex((page) => page.status === 200) === 0 ? 'first passphrase for ada' : 'second passphrase for ada';
    expect(await server.services.accounts.authenticate(user.email, winner)).toBeDefined();
  });

  it('ends the sessions and refresh tokens of a person signed in elsewhere', async () => {
    const user = await createUser(server.services);
    const elsewhere = createBrowser();
    const { tokens } = await signIn(rp, elsewhere, { email: user.email, password, scope: 'openid email offline_access', consent: true });
    expect(tokens.refresh_token).toBeTruthy();

    const browser = createBrowser();
    await askForLink(browser, user.email);
    const form = await browser.follow(await receivedLink(user.email));
    expect((await browser.submit(form, 'form[action="/password/reset"]', { password: newPassword })).status).toBe(200);

    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // The other browser's Latchkey session is gone: an app sends it to the login page again.
    const again = await authorize(rp, elsewhere, { email: user.email, password: 'wrong' });
    expect(again.page.html).toContain('name="password"');
  });

  it('never writes a reset token to the log', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    await askForLink(browser, user.email);
    const link = await receivedLink(user.email);
    const form = await browser.follow(link);
    await browser.submit(form, 'form[action="/password/reset"]', { password: newPassword });
    await server.services.audit.settled();
    const token = new URL(link).searchParams.get('token')!;
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter((line) => line.includes(token))).toEqual([]);
    // The database holds only its hash.
    expect(JSON.stringify(await server.database('account_tokens').select())).not.toContain(token);
    // And the outbox forgot the mail's body once it was delivered.
    expect(JSON.stringify(await server.database('mail_outbox').where({ status: 'sent' }).select())).not.toContain(token);
  });
});
