import * as oidc from 'openid-client';
import { parse } from 'node-html-parser';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createBrowser, textOf, type Browser, type Page } from './support/browser.js';
import { authorizeWith, redeem } from './support/conformance.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { startLogoutReceiver, verifyLogoutToken } from './support/logout-receiver.js';
import { discoverRp, redirectUri } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// prompt=select_account (OpenID Connect Core §3.1.2.1): the account chooser of src/interaction/select-account.ts.

let server: TestServer;
let receiver: Awaited<ReturnType<typeof startLogoutReceiver>>;
let rp: oidc.Configuration;

beforeAll(async () => {
  [server, receiver] = await Promise.all([startTestServer(), startLogoutReceiver()]);
  const client = await createClient(server.services, { backchannelLogoutUri: receiver.url });
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(async () => {
  await Promise.all([server.close(), receiver.close()]);
});
afterEach(() => {
  vi.useRealTimers();
});

type Flow = Awaited<ReturnType<typeof authorizeWith>>;

/** A person signed in at a browser that has allowed the app; their first tokens. */
async function signedIn(names: { givenName?: string; familyName?: string } = {}) {
  const user = await createUser(server.services, names);
  const browser = createBrowser();
  const tokens = await redeem(rp, await authorizeWith(rp, browser, {}, { email: user.email, password }));
  return { user, browser, tokens };
}

/** The flow `authorizeWith` started, finished at `page` (the app's callback). */
const endingAt = (flow: Flow, page: Page): Flow => ({ ...flow, page, callbackUrl: new URL(page.url) });

const isChooser = (page: Page) => page.html.includes('/select-account/continue');
const isLogin = (page: Page) => page.html.includes('name="password"');

/** The browser's cookies for the issuer's root path (the SSO session's), copied into a browser of their own. */
function browserWithCookiesOf(browser: Browser): Browser {
  const copy = createBrowser();
  for (const cookie of browser.jar.getCookiesSync(server.issuer)) copy.jar.setCookieSync(cookie.toString(), server.issuer);
  return copy;
}

describe('prompt=select_account', () => {
  it('is advertised in prompt_values_supported with the other prompts', async () => {
    const metadata = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json();
    expect([...metadata.prompt_values_supported].sort()).toEqual(['consent', 'login', 'none', 'select_account']);
  });

  it('without a session, goes straight to the login form, and signing in settles it', async () => {
    const user = await createUser(server.services);
    const flow = await authorizeWith(rp, createBrowser(), { prompt: 'select_account' }, { email: user.email, password });
    expect(flow.pages.map(isLogin)).toEqual([true, false]);
    expect(flow.pages.some(isChooser)).toBe(false);
    expect((await redeem(rp, flow)).claims()!.sub).toBe(user.id);
  });

  it('has nothing to offer from a session that can sign no one in (from before `users logout`): the login form', async () => {
    const { user, browser } = await signedIn();
    // A request in flight while the sessions were ended writes its session back (see src/oidc/session-cutoff.ts),
    // signed in a little earlier than the cutoff, which is kept to the second.
    const row = await server.database('oidc_payloads').where({ model: 'Session', account_id: user.id }).first();
    await server.services.accounts.logout(user.email);
    const payload = JSON.parse(row.payload);
    await server.database('oidc_payloads').insert({ ...row, payload: JSON.stringify({ ...payload, loginTs: payload.loginTs - 5 }) });
    const flow = await authorizeWith(rp, browser, { prompt: 'select_account' }, { email: user.email, password });
    expect(flow.pages.some(isChooser)).toBe(false);
    expect(flow.loginShown).toBe(true);
    expect((await redeem(rp, flow)).claims()!.sub).toBe(user.id);
  });

  it('with a session, names the signed-in person; Continue gives a code for the same sub without asking for a password', async () => {
    const { user, browser, tokens } = await signedIn({ givenName: 'Grace', familyName: 'Hopper' });
    const flow = await authorizeWith(rp, browser, { prompt: 'select_account' });
    expect(isChooser(flow.page)).toBe(true);
    expect(textOf(flow.page.html, 'h1')).toBe('Choose an account');
    expect(textOf(flow.page.html, 'p.account')).toContain('Grace Hopper');
    expect(textOf(flow.page.html, 'p.account')).toContain(user.email);
    expect(textOf(flow.page.html, 'form[action$="/select-account/continue"] button')).toBe(`Continue as ${user.email}`);
    expect(textOf(flow.page.html, 'form[action$="/select-account/another"] button')).toBe('Use another account');

    const callback = await browser.submit(flow.page, 'form[action$="/select-account/continue"]', {}, redirectUri);
    expect(callback.url.startsWith(redirectUri)).toBe(true);
    const claims = (await redeem(rp, endingAt(flow, callback))).claims()!;
    expect(claims.sub).toBe(user.id);
    // The same sign-in, not a new one.
    expect(claims.auth_time).toBe(tokens.claims()!.auth_time);
  });

  it('speaks the language of ui_locales', async () => {
    const { user, browser } = await signedIn();
    const flow = await authorizeWith(rp, browser, { prompt: 'select_account', ui_locales: 'de' });
    expect(textOf(flow.page.html, 'h1')).toBe('Konto auswählen');
    expect(textOf(flow.page.html, 'form[action$="/select-account/continue"] button')).toBe(`Weiter als ${user.email}`);
  });

  it('Use another account: an empty login form; the app gets the other person, whose session replaces the first one\'s', async () => {
    const first = await signedIn();
    const second = await createUser(server.services);
    const firstSession = browserWithCookiesOf(first.browser);
    const logoutsBefore = receiver.tokens.length;

    // The app's login_hint names the signed-in person; choosing another account leaves it out.
    const flow = await authorizeWith(rp, first.browser, { prompt: 'select_account', login_hint: first.user.email });
    const login = await first.browser.submit(flow.page, 'form[action$="/select-account/another"]', {}, redirectUri);
    expect(isLogin(login)).toBe(true);
    expect(parse(login.html).querySelector('#email')?.getAttribute('value') ?? '').toBe('');

    const switching = await first.browser.submit(login, 'form[action$="/login"]', { email: second.email, password }, redirectUri);
    // oidc-provider ends the first person's session before the second one's starts, with a form the browser
    // submits by itself (a browser without JavaScript shows its button).
    const consent = await first.browser.submit(switching, 'form[action$="/session/end/confirm"]', {}, redirectUri);
    expect(textOf(consent.html, 'p.detail')).toContain(`Signed in as ${second.email}`);
    const callback = await first.browser.submit(consent, 'form[action$="/confirm"]', {}, redirectUri);
    expect((await redeem(rp, endingAt(flow, callback))).claims()!.sub).toBe(second.id);

    // The browser now signs the second person in silently, and a copy of the first person's session cookie signs
    // no one in: that session is gone, not merged.
    const silent = await authorizeWith(rp, first.browser, { prompt: 'none' });
    expect((await redeem(rp, silent)).claims()!.sub).toBe(second.id);
    const replayed = await authorizeWith(rp, firstSession, { prompt: 'none' });
    expect(replayed.callbackUrl.searchParams.get('error')).toBe('login_required');

    // Its app was told (back-channel logout), and the grant the first person gave it is revoked.
    expect(receiver.tokens.length).toBe(logoutsBefore + 1);
    const logout = await verifyLogoutToken(receiver.tokens.at(-1)!, server.issuer, rp.clientMetadata().client_id);
    expect(logout.sub).toBe(first.user.id);
    await expect(oidc.refreshTokenGrant(rp, first.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('Use another account, signing in as the same person again, keeps that person signed in', async () => {
    const { user, browser } = await signedIn();
    const flow = await authorizeWith(rp, browser, { prompt: 'select_account' });
    const login = await browser.submit(flow.page, 'form[action$="/select-account/another"]', {}, redirectUri);
    const callback = await browser.submit(login, 'form[action$="/login"]', { email: user.email, password }, redirectUri);
    expect((await redeem(rp, endingAt(flow, callback))).claims()!.sub).toBe(user.id);
  });

  it('with none is refused with invalid_request, sent to the app (none must stand alone)', async () => {
    const { browser } = await signedIn();
    const flow = await authorizeWith(rp, browser, { prompt: 'select_account none', state: 'pick' });
    expect(flow.callbackUrl.href.startsWith(redirectUri)).toBe(true);
    expect(flow.callbackUrl.searchParams.get('error')).toBe('invalid_request');
    expect(flow.callbackUrl.searchParams.get('state')).toBe('pick');
    // Refused for standing with none, not for being unknown.
    expect(flow.callbackUrl.searchParams.get('error_description')).toBe('prompt none must only be used alone');
  });

  it('with consent: the chooser, then the consent page although the app was allowed before', async () => {
    const { user, browser } = await signedIn();
    const flow = await authorizeWith(rp, browser, { prompt: 'select_account consent' });
    expect(isChooser(flow.page)).toBe(true);
    const consent = await browser.submit(flow.page, 'form[action$="/select-account/continue"]', {}, redirectUri);
    expect(textOf(consent.html, 'p.detail')).toContain(`Signed in as ${user.email}`);
    const callback = await browser.submit(consent, 'form[action$="/confirm"]', {}, redirectUri);
    expect((await redeem(rp, endingAt(flow, callback))).claims()!.sub).toBe(user.id);
  });

  it('Continue still asks for the password when max_age finds the sign-in too old', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const { user, browser } = await signedIn();
    vi.setSystemTime(Date.now() + 2000);
    const flow = await authorizeWith(rp, browser, { prompt: 'select_account', max_age: '1' });
    const login = await browser.submit(flow.page, 'form[action$="/select-account/continue"]', {}, redirectUri);
    expect(isLogin(login)).toBe(true);
    const callback = await browser.submit(login, 'form[action$="/login"]', { email: user.email, password }, redirectUri);
    expect((await redeem(rp, endingAt(flow, callback), { maxAge: 1 })).claims()!.sub).toBe(user.id);
  });
});

describe('attacks on the account chooser', () => {
  it('refuses an answer without its CSRF token, or with another one, with a page and not a 500', async () => {
    const { user, browser } = await signedIn();
    const flow = await authorizeWith(rp, browser, { prompt: 'select_account' });
    const uid = /\/interaction\/([^/]+)/.exec(flow.page.url)![1]!;
    for (const path of ['continue', 'another']) {
      for (const csrf of [undefined, '', 'x'.repeat(43)]) {
        const body = new URLSearchParams(csrf === undefined ? {} : { csrf });
        const answer = await browser.request(`${server.issuer}/interaction/${uid}/select-account/${path}`, {
          method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' },
        });
        expect(answer.status, `${path} with csrf ${csrf}`).toBe(400);
        expect(await answer.text()).toContain('did not come from this site');
      }
    }
    // Nothing was chosen: the page still answers with its own token.
    const callback = await browser.submit(flow.page, 'form[action$="/select-account/continue"]', {}, redirectUri);
    expect((await redeem(rp, endingAt(flow, callback))).claims()!.sub).toBe(user.id);
  });

  it('refuses another browser\'s interaction, even with its page\'s token', async () => {
    const victim = await signedIn();
    const attacker = await signedIn();
    const flow = await authorizeWith(rp, victim.browser, { prompt: 'select_account' });
    const form = parse(flow.page.html).querySelector('form[action$="/select-account/another"]')!;
    const body = new URLSearchParams({ csrf: form.querySelector('input[name="csrf"]')!.getAttribute('value')! });
    for (const browser of [attacker.browser, createBrowser()]) {
      const answer = await browser.request(new URL(form.getAttribute('action')!, flow.page.url).href, {
        method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(answer.status).toBe(400);
      expect(answer.headers.get('content-type')).toContain('text/html');
    }
    // The victim's chooser is untouched.
    const callback = await victim.browser.submit(flow.page, 'form[action$="/select-account/continue"]', {}, redirectUri);
    expect((await redeem(rp, endingAt(flow, callback))).claims()!.sub).toBe(victim.user.id);
  });
});
