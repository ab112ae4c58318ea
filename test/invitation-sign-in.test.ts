import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, textOf, type Browser, type Page } from './support/browser.js';
import { createClient } from './support/fixtures.js';
import { authorize, discoverRp, redirectUri } from './support/rp.js';
import { startTestServer, testMailSettings, type TestServer } from './support/server.js';
import { linkIn, startSmtpServer, type ReceivedMail, type TestSmtpServer } from './support/smtp.js';

const chosen = 'my own long passphrase';
const ticketTtlSeconds = 300;
let smtp: TestSmtpServer;
let server: TestServer;
let mfaServer: TestServer;
const logLines: string[] = [];
const clock = { offsetMs: 0 };

beforeAll(async () => {
  smtp = await startSmtpServer();
  const mail = { ...testMailSettings, smtpUrl: smtp.url, inviteSignInTtlSeconds: ticketTtlSeconds };
  server = await startTestServer({ mail }, undefined, {
    logDestination: { write: (line: string) => void logLines.push(line) }, now: () => Date.now() + clock.offsetMs,
  });
  mfaServer = await startTestServer({ mail, mfa: { policy: 'required', totpDriftSteps: 1, passkeyTimeoutSeconds: 300 } });
});
afterAll(async () => {
  await server?.close();
  await mfaServer?.close();
  await smtp?.close();
});

const to = (email: string) => (mail: ReceivedMail) => mail.envelopeTo.includes(email);
let invited = 0;

/** Invites a new address (as the CLI does) and opens the mailed link in a fresh browser: the "choose your password" form. */
async function openInvitation(at: TestServer): Promise<{ email: string; browser: Browser; form: Page; link: string }> {
  const email = `invited-${Date.now()}-${invited++}@example.com`;
  await at.services.recovery.invitations.invite({ email, actor: 'test' });
  await at.services.mailSender.sendDue();
  const [mail] = await smtp.waitFor(1, to(email));
  const link = linkIn(mail!, `${at.issuer}/invitation?token=`);
  const browser = createBrowser();
  return { email, browser, form: await browser.follow(link), link };
}

/** Follows redirects by hand, keeping every URL the browser was sent to; stops before `stopAt`. */
async function walk(browser: Browser, response: Response, from: string, stopAt?: (url: string) => boolean): Promise<{ page: Page; urls: string[] }> {
  const urls = [from];
  let current = from;
  while (response.status >= 300 && response.status < 400) {
    current = new URL(response.headers.get('location')!, current).href;
    urls.push(current);
    if (stopAt?.(current)) return { page: { url: current, status: response.status, html: '', headers: response.headers }, urls };
    response = await browser.request(current);
  }
  return { page: { url: current, status: response.status, html: await response.text(), headers: response.headers }, urls };
}

/** Submits the invitation form with `password` and returns the first response (the browser is not sent on yet). */
async function accept(browser: Browser, form: Page, password = chosen): Promise<Response> {
  const csrf = /name="csrf" value="([^"]+)"/.exec(form.html)![1]!;
  const token = /name="token" value="([^"]+)"/.exec(form.html)![1]!;
  return browser.request(`${new URL(form.url).origin}/invitation`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf, token, password }),
  });
}

const ticketIn = (browser: Browser, issuer: string) => browser.jar.getCookiesSync(`${issuer}/interaction/x`).find((cookie) => cookie.key === 'latchkey-sign-in');

describe('accepting an invitation signs the person in', () => {
  it('lands the browser on its account page, signed in, with the ticket in an HttpOnly cookie and never in a URL', async () => {
    const { email, browser, form } = await openInvitation(server);
    const response = await accept(browser, form);
    expect(response.status).toBe(303);
    const setCookie = response.headers.getSetCookie().find((line) => line.startsWith('latchkey-sign-in='))!;
    expect(setCookie).toMatch(/httponly/i);
    expect(setCookie).toMatch(/samesite=lax/i);
    const ticket = ticketIn(browser, server.issuer)!.value;
    expect(ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const { page, urls } = await walk(browser, response, `${server.issuer}/invitation`);
    expect(page.url).toBe(`${server.issuer}/account`);
    expect(textOf(page.html, 'h1')).toBe('Your account');
    expect(page.html).toContain(email);
    expect(urls.some((url) => url.includes('/interaction/'))).toBe(true);
    expect(urls.filter((url) => url.includes(ticket))).toEqual([]);
    // Used up, and the cookie is cleared.
    expect(ticketIn(browser, server.issuer)).toBeUndefined();
    // The password works too.
    expect(await server.services.accounts.authenticate(email, chosen)).toMatchObject({ email, emailVerified: true });

    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.filter((line) => line.includes(ticket))).toEqual([]);
  });

  it('works once: the same cookie in another browser, after it was used, gets the login form', async () => {
    const { browser, form } = await openInvitation(server);
    const response = await accept(browser, form);
    const ticket = ticketIn(browser, server.issuer)!.value;
    const { page } = await walk(browser, response, `${server.issuer}/invitation`);
    expect(textOf(page.html, 'h1')).toBe('Your account');

    const thief = createBrowser();
    thief.jar.setCookieSync(`latchkey-sign-in=${ticket}; Path=/`, server.issuer);
    const stolen = await thief.follow(`${server.issuer}/account`);
    expect(stolen.url).toContain('/interaction/');
    expect(textOf(stolen.html, 'h1')).toBe('Sign in');
  });

  it('is used by one browser only when two race with the same ticket', async () => {
    const { browser, form } = await openInvitation(server);
    const response = await accept(browser, form);
    const ticket = ticketIn(browser, server.issuer)!.value;
    const first = createBrowser();
    const second = createBrowser();
    for (const other of [first, second]) other.jar.setCookieSync(`latchkey-sign-in=${ticket}; Path=/`, server.issuer);
    const pages = await Promise.all([first, second].map((other) => other.follow(response.headers.get('location')!)));
    expect(pages.map((page) => textOf(page.html, 'h1')).sort()).toEqual(['Sign in', 'Your account']);
  });

  it('ignores an expired ticket (INVITE_SIGN_IN_TTL): the login form shows as usual', async () => {
    const { browser, form } = await openInvitation(server);
    const response = await accept(browser, form);
    clock.offsetMs = (ticketTtlSeconds + 1) * 1000;
    try {
      const { page } = await walk(browser, response, `${server.issuer}/invitation`);
      expect(page.url).toContain('/interaction/');
      expect(textOf(page.html, 'h1')).toBe('Sign in');
    } finally {
      clock.offsetMs = 0;
    }
  });

  it('ignores the ticket of an account disabled after the invitation was accepted', async () => {
    const { email, browser, form } = await openInvitation(server);
    const response = await accept(browser, form);
    await server.services.accounts.disable(email);
    const { page } = await walk(browser, response, `${server.issuer}/invitation`);
    expect(textOf(page.html, 'h1')).toBe('Sign in');
  });

  it('ignores a made-up ticket', async () => {
    const browser = createBrowser();
    browser.jar.setCookieSync(`latchkey-sign-in=${'A'.repeat(43)}; Path=/`, server.issuer);
    const page = await browser.follow(`${server.issuer}/account`);
    expect(textOf(page.html, 'h1')).toBe('Sign in');
  });

  it('signs in as the invited person, not as someone already signed in to the browser', async () => {
    const first = await openInvitation(server);
    const { page: signedIn } = await walk(first.browser, await accept(first.browser, first.form), `${server.issuer}/invitation`);
    expect(signedIn.html).toContain(first.email);
    // A second invitation opened in the same browser.
    const second = await openInvitation(server);
    const form = await first.browser.follow(second.link);
    const { page: switching } = await walk(first.browser, await accept(first.browser, form), `${server.issuer}/invitation`);
    // oidc-provider ends the other account's session first, with the form a browser submits by itself.
    const page = await first.browser.submit(switching, 'form[action$="/session/end/confirm"]');
    expect(textOf(page.html, 'h1')).toBe('Your account');
    expect(page.html).toContain(second.email);
    expect(page.html).not.toContain(first.email);
  });

  it('takes a person who came from an app\'s sign-in back to it, signed in with amr pwd', async () => {
    const client = await createClient(server.services);
    const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const { email, browser, link } = await openInvitation(server);
    // The app's sign-in, then "Forgot your password?" (which remembers it), then the invitation in the same browser.
    const started = await authorize(rp, browser, { email: '', password: '' });
    const forgot = /href="([^"]*\/password\/forgot[^"]*)"/.exec(started.page.html)![1]!.replaceAll('&amp;', '&');
    await browser.follow(new URL(forgot, server.issuer).href);
    const form = await browser.follow(link);
    const { page: consent } = await walk(browser, await accept(browser, form), `${server.issuer}/invitation`, (url) => url.startsWith(redirectUri));
    // Signed in: the app's own next step, its consent page, for the invited person.
    expect(textOf(consent.html, 'p.detail')).toContain(`Signed in as ${email}`);
    const page = await browser.submit(consent, 'form[action$="/confirm"]', {}, redirectUri);
    expect(page.url.startsWith(redirectUri)).toBe(true);
    const tokens = await oidc.authorizationCodeGrant(rp, new URL(page.url), {
      pkceCodeVerifier: started.codeVerifier, expectedState: started.state, expectedNonce: started.nonce,
    });
    const user = await server.services.accounts.findByEmail(email);
    expect(tokens.claims()).toMatchObject({ sub: user!.id, amr: ['pwd'] });
  });

  it('with MFA=required, takes the person to set up a second factor', async () => {
    const { browser, form } = await openInvitation(mfaServer);
    const { page } = await walk(browser, await accept(browser, form), `${mfaServer.issuer}/invitation`);
    expect(page.url).toMatch(/\/interaction\/[^/]+\/mfa$/);
    expect(textOf(page.html, 'h1')).toBe('Set up two-step sign-in');
  });

  it('a password the policy refuses signs nobody in and issues no ticket', async () => {
    const { browser, form } = await openInvitation(server);
    const response = await accept(browser, form, 'short');
    expect(response.status).toBe(400);
    expect(ticketIn(browser, server.issuer)).toBeUndefined();
  });
});
