import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader, generateKeyPair, importJWK, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../examples/api/api.js';
import { startWebApp, type RunningWebApp } from '../examples/web-app/web-app.js';
import { runCli } from '../src/cli/main.js';
import { orderForSigning, readSigningKeys } from '../src/signing-keys.js';
import { createBrowser, textOf, type Browser, type Page } from './support/browser.js';
import { apiAudience as audience, startExamples, type ExampleSetup } from './support/examples.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;
let api: RunningApi;
let apps: RunningWebApp[];
let examples: ExampleSetup;
let service: oidc.Configuration;
/** The web apps' clock runs this far ahead of the real one. */
let clockOffsetMs = 0;

beforeAll(async () => {
  server = await startTestServer();
  examples = await startExamples(server, { now: () => Date.now() + clockOffsetMs });
  ({ api, apps } = examples);
  const worker = await createClient(server.services, { grantTypes: ['client_credentials'], redirectUris: [], apis: [{ audience, scopes: ['read', 'write'] }] });
  service = await discoverRp(server.issuer, worker.clientId, worker.clientSecret!);
});
afterAll(async () => {
  await examples?.close();
  await server?.close();
});

/** Walks "Sign in" on an app: Latchkey's login form when it asks for a password, its consent form when it asks. */
async function signInToApp(browser: Browser, app: RunningWebApp, email?: string): Promise<Page> {
  let page = await browser.follow(`${app.url}/login`);
  if (page.html.includes('name="password"')) {
    if (!email) throw new Error('Latchkey asked for a password');
    page = await browser.submit(page, 'form[action$="/login"]', { email, password });
  }
  if (page.url.includes('/interaction/')) page = await browser.submit(page, 'form[action$="/confirm"]');
  return page;
}

async function callApi(browser: Browser, page: Page) {
  const answered = await browser.submit(page, 'form#call-api');
  return { page: answered, answer: JSON.parse(textOf(answered.html, '#api-answer') ?? 'null') };
}

describe('the example web apps and API with single sign-on', () => {
  it('signs a user in to app 1, calls the API with their token, and signs them in to app 2 without a password', async () => {
    const user = await createUser(server.services, { email: 'ada.sso@example.com' });
    const browser = createBrowser();
    const home = await signInToApp(browser, apps[0], user.email);
    expect(home.url).toBe(`${apps[0].url}/`);
    expect(textOf(home.html, '#sub')).toBe(user.id);

    const { page, answer } = await callApi(browser, home);
    expect(textOf(page.html, 'h2')).toBe('The API answered 200');
    expect(answer).toMatchObject({ sub: user.id, email: 'ada.sso@example.com', clientId: 'notes', scope: 'read', message: 'Hello, ada.sso@example.com!' });

    const second = await browser.follow(`${apps[1].url}/login`);
    expect(second.url).toBe(`${apps[1].url}/`);
    expect(textOf(second.html, '#sub')).toBe(user.id);
    expect((await callApi(browser, second)).answer).toMatchObject({ sub: user.id, clientId: 'calendar' });
  });

  it('keeps the tokens on the server: the browser holds only an HttpOnly, SameSite=Lax session cookie', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    await signInToApp(browser, apps[0], user.email);
    const cookies = await browser.jar.getCookies(apps[0].url);
    const appCookies = cookies.filter((cookie) => cookie.key.startsWith('app-session-'));
    expect(appCookies).toHaveLength(1);
    expect(appCookies[0]).toMatchObject({ httpOnly: true, sameSite: 'lax' });
    // Only a random id: no token, no claims.
    expect(appCookies[0].value).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('gives a new session id at sign-in, so a session id planted before sign-in is worthless', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    await browser.follow(`${apps[0].url}/login`);
    const before = (await browser.jar.getCookies(apps[0].url)).find((cookie) => cookie.key === 'app-session-notes')!.value;
    await signInToApp(browser, apps[0], user.email);
    const after = (await browser.jar.getCookies(apps[0].url)).find((cookie) => cookie.key === 'app-session-notes')!.value;
    expect(after).not.toBe(before);
    const planted = await fetch(`${apps[0].url}/`, { headers: { cookie: `app-session-notes=${before}` } });
    expect(await planted.text()).toContain('You are not signed in.');
  });

  it('refreshes an expired access token before calling the API, and reuses it while it is fresh', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    const home = await signInToApp(browser, apps[0], user.email);
    const first = await callApi(browser, home);
    const again = await callApi(browser, first.page);
    expect(again.answer.token.id).toBe(first.answer.token.id);

    clockOffsetMs = 301_000;
    try {
      const refreshed = await callApi(browser, again.page);
      expect(refreshed.answer).toMatchObject({ sub: user.id, email: user.email });
      expect(refreshed.answer.token.id).not.toBe(first.answer.token.id);
      // The rotated refresh token works on: a second expiry refreshes again.
      clockOffsetMs = 602_000;
      const twice = await callApi(browser, refreshed.page);
      expect(twice.answer.token.id).not.toBe(refreshed.answer.token.id);
    } finally {
      clockOffsetMs = 0;
    }
  });

  it('refreshes once for concurrent API calls, so rotation never sees the same refresh token twice', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    const home = await signInToApp(browser, apps[0], user.email);
    const csrf = /name="csrf" value="([^"]+)"/.exec(home.html)![1];
    const post = () => browser.request(`${apps[0].url}/call-api`, {
      method: 'POST', body: new URLSearchParams({ csrf }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    clockOffsetMs = 301_000;
    try {
      await Promise.all([post(), post(), post()]);
      // A replayed refresh token would have revoked the grant and signed the user out.
      clockOffsetMs = 602_000;
      const { answer } = await callApi(browser, await browser.follow(`${apps[0].url}/`));
      expect(answer).toMatchObject({ sub: user.id });
    } finally {
      clockOffsetMs = 0;
    }
  });

  it('refuses the state-changing forms without the session CSRF token', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    const home = await signInToApp(browser, apps[0], user.email);
    const post = (body: Record<string, string>) => browser.request(`${apps[0].url}/call-api`, {
      method: 'POST', body: new URLSearchParams(body), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect((await post({})).status).toBe(403);
    expect((await post({ csrf: 'x'.repeat(43) })).status).toBe(403);
    // Another session's token does not work either.
    const other = await signInToApp(createBrowser(), apps[0], user.email);
    const otherToken = /name="csrf" value="([^"]+)"/.exec(other.html)![1];
    expect((await post({ csrf: otherToken })).status).toBe(403);
    const logout = await browser.request(`${apps[0].url}/logout`, {
      method: 'POST', body: new URLSearchParams({ csrf: otherToken }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(logout.status).toBe(403);
    // Still signed in, and the real form works.
    expect((await callApi(browser, home)).answer.sub).toBe(user.id);
  });

  it('refuses a callback that this browser did not start, or with a wrong state', async () => {
    const stranger = await createBrowser().follow(`${apps[0].url}/callback?code=abc&state=xyz`);
    expect(stranger.status).toBe(400);
    expect(textOf(stranger.html, '.error')).toBe('This sign-in was not started here or took too long.');

    const browser = createBrowser();
    const user = await createUser(server.services);
    const login = await browser.follow(`${apps[0].url}/login`);
    const consent = await browser.submit(login, 'form[action$="/login"]', { email: user.email, password });
    const callback = await browser.submit(consent, 'form[action$="/confirm"]', {}, `${apps[0].url}/callback`);
    const forged = new URL(callback.url);
    forged.searchParams.set('state', 'not-the-state');
    const page = await browser.follow(forged.href);
    expect(page.status).toBe(400);
    expect(textOf(page.html, 'h1')).toBe('Sign-in failed');
  });

  it('shows a readable error when the user denies consent', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    const login = await browser.follow(`${apps[0].url}/login`);
    const consent = await browser.submit(login, 'form[action$="/login"]', { email: user.email, password });
    const page = await browser.submit(consent, 'form[action$="/abort"]');
    expect(page.url).toContain(`${apps[0].url}/callback?error=access_denied`);
    expect(page.status).toBe(400);
    expect(textOf(page.html, '.error')).toBe('The user cancelled the sign-in.');
  });

  it('signs the user out of the app when Latchkey refuses the refresh (here: the password was reset)', async () => {
    // An app without back-channel logout only learns at the next refresh that the user's tokens were revoked.
    const clientSecret = randomBytes(32).toString('base64url');
    const app = await startWebApp({
      issuer: server.issuer, clientId: 'no-backchannel', clientSecret, apiUrl: api.url, apiAudience: audience, name: 'Plain',
      now: () => Date.now() + clockOffsetMs,
    });
    try {
      await server.services.clients.register({
        clientId: 'no-backchannel', clientSecret, skipConsent: true, apis: [{ audience, scopes: ['read'] }],
        redirectUris: [`${app.url}/callback`], grantTypes: ['authorization_code', 'refresh_token'],
      });
      const user = await createUser(server.services);
      const browser = createBrowser();
      const home = await signInToApp(browser, app, user.email);
      await server.services.accounts.setPassword(user.email, 'a new password for a new start');
      // The JWT access token is verified offline, so it keeps working until it expires …
      expect((await callApi(browser, home)).answer.sub).toBe(user.id);
      // … and then the refresh is refused.
      clockOffsetMs = 301_000;
      const after = await browser.submit(home, 'form#call-api');
      expect(after.html).toContain('You are not signed in.');
    } finally {
      clockOffsetMs = 0;
      await app.close();
    }
  });

  it('serves pages with a CSP and no inline script', async () => {
    const response = await fetch(`${apps[0].url}/`);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await response.text()).not.toContain('<script');
  });

  it('signs out of Latchkey from app 1, and back-channel logout ends the session in app 2 too', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    const home = await signInToApp(browser, apps[0], user.email);
    await signInToApp(browser, apps[1]);
    // Another user's session in app 2 is left alone.
    const bystander = createBrowser();
    await signInToApp(bystander, apps[1], (await createUser(server.services)).email);

    const confirm = await browser.submit(home, 'form#logout');
    expect(confirm.url).toContain('/session/end');
    const signedOut = await browser.submit(confirm, 'form', { logout: 'yes' });
    expect(signedOut.url).toBe(`${apps[0].url}/signed-out`);
    expect((await browser.follow(`${apps[0].url}/`)).html).toContain('You are not signed in.');
    expect((await browser.follow(`${apps[1].url}/`)).html).toContain('You are not signed in.');
    expect((await bystander.follow(`${apps[1].url}/`)).html).toContain('Signed in as user');
    // Latchkey asks for the password again.
    expect((await browser.follow(`${apps[1].url}/login`)).html).toContain('name="password"');
  });

  it('ends the apps\' sessions when an administrator runs `latchkey users logout`', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    await signInToApp(browser, apps[0], user.email);
    await signInToApp(browser, apps[1]);
    const lines: string[] = [];
    const env = { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir, ISSUER: server.issuer };
    const code = await runCli(['users', 'logout', '--email', user.email], env, { stdout: (line) => lines.push(line), stderr: (line) => lines.push(line) });
    expect(code, lines.join('\n')).toBe(0);
    for (const app of apps) expect((await browser.follow(`${app.url}/`)).html).toContain('You are not signed in.');
  });
});

describe('the example app\'s back-channel logout endpoint (Back-Channel Logout 1.0 §2.6)', () => {
  const event = { 'http://schemas.openid.net/event/backchannel-logout': {} };

  /** A logout token signed with Latchkey's own current key (or `key`), as Latchkey would send it to app 1. */
  async function logoutToken(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key?: CryptoKey) {
    const [signing] = orderForSigning(readSigningKeys(server.config.keysDir), Date.now());
    const privateKey = key ?? await importJWK(signing.jwk, 'RS256');
    return new SignJWT({ iss: server.issuer, aud: 'notes', events: event, jti: randomBytes(8).toString('hex'), sub: 'someone', ...claims })
      .setProtectedHeader({ alg: 'RS256', typ: 'logout+jwt', kid: signing.jwk.kid, ...header })
      .setIssuedAt().setExpirationTime('2m')
      .sign(privateKey);
  }
  const deliver = (token?: string) => fetch(`${apps[0].url}/backchannel-logout`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(token === undefined ? {} : { logout_token: token }),
  });

  it('accepts a valid logout token once, and refuses its replay', async () => {
    const token = await logoutToken();
    expect((await deliver(token)).status).toBe(200);
    const replay = await deliver(token);
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: 'invalid_request', error_description: 'logout_token was already used' });
  });

  it('refuses tokens that are missing, forged, for another audience or issuer, or not logout tokens', async () => {
    const { privateKey: foreignKey } = await generateKeyPair('RS256');
    const refused = [
      undefined,
      'not-a-jwt',
      await logoutToken({}, {}, foreignKey),
      await logoutToken({ aud: 'calendar' }),
      await logoutToken({ iss: 'https://evil.example.test' }),
      await logoutToken({}, { typ: 'JWT' }),
      await logoutToken({ events: {} }),
      await logoutToken({ events: { 'http://schemas.openid.net/event/backchannel-logout': 'yes' } }),
      await logoutToken({ sub: undefined }),
      await logoutToken({ nonce: 'n-0S6_WzA2Mj' }),
      await logoutToken({ jti: undefined }),
    ];
    for (const token of refused) expect((await deliver(token)).status, String(token)).toBe(400);
  });

  it('ends only the sessions of the named sid', async () => {
    const user = await createUser(server.services);
    const [first, second] = [createBrowser(), createBrowser()];
    await signInToApp(first, apps[0], user.email);
    await signInToApp(second, apps[0], user.email);
    const { sessions } = await server.services.accounts.listSessions(user.email);
    expect(sessions).toHaveLength(2);
    const sid = sessions[0].clients.find((client) => client.clientId === 'notes')!.sid!;
    expect((await deliver(await logoutToken({ sub: user.id, sid }))).status).toBe(200);
    const pages = await Promise.all([first, second].map((browser) => browser.follow(`${apps[0].url}/`)));
    expect(pages.filter((page) => page.html.includes('You are not signed in.'))).toHaveLength(1);
  });
});

describe('the example API', () => {
  const hello = (authorization?: string, url = api.url) => fetch(`${url}/hello`, { headers: authorization ? { authorization } : {} });

  it('answers 401 with a bare Bearer challenge when no token is sent (RFC 6750 §3.1)', async () => {
    for (const header of [undefined, 'Basic YWxhZGRpbjpvcGVuc2VzYW1l']) {
      const response = await hello(header);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(`Bearer realm="${audience}"`);
    }
  });

  it('answers 400 invalid_request for a malformed Bearer header', async () => {
    const response = await hello('Bearer two tokens');
    expect(response.status).toBe(400);
    expect(response.headers.get('www-authenticate')).toContain('error="invalid_request"');
  });

  it('answers 401 invalid_token for a forged, tampered or foreign token', async () => {
    const tokens = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read' });
    const [header, payload, signature] = tokens.access_token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const tampered = [header, Buffer.from(JSON.stringify({ ...claims, scope: 'read write' })).toString('base64url'), signature].join('.');
    // An ID token is signed by the same key but is not an access token for this API (typ, aud).
    const client = await createClient(server.services);
    const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const user = await createUser(server.services);
    const { tokens: signedIn } = await signIn(rp, createBrowser(), { email: user.email, password, consent: true });
    for (const token of [tampered, signedIn.id_token!, 'abc']) {
      const response = await hello(`Bearer ${token}`);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="[^"]+", error="invalid_token", error_description="[^"]+"$/);
    }
    const otherApi = await startApi({ issuer: server.issuer, audience: 'https://other.example.test' });
    try {
      expect((await hello(`Bearer ${tokens.access_token}`, otherApi.url)).status).toBe(401);
    } finally {
      await otherApi.close();
    }
  });

  it('answers 403 insufficient_scope when the token lacks the read scope', async () => {
    const tokens = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'write' });
    const response = await hello(`Bearer ${tokens.access_token}`);
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toBe(`Bearer realm="${audience}", error="insufficient_scope", error_description="the read scope is required", scope="read"`);
    expect(await response.json()).toMatchObject({ error: 'insufficient_scope' });
  });

  it('answers 503, not 401, when it cannot fetch the signing keys', async () => {
    const tokens = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read' });
    const stranded = await startApi({ issuer: 'http://127.0.0.1:9', audience });
    try {
      const response = await hello(`Bearer ${tokens.access_token}`, stranded.url);
      expect(response.status).toBe(503);
    } finally {
      await stranded.close();
    }
  });

  it('accepts tokens signed with a key rotated by `latchkey keys rotate --now`, without a restart', async () => {
    const before = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read' });
    expect((await hello(`Bearer ${before.access_token}`)).status).toBe(200);

    const lines: string[] = [];
    const code = await runCli(['keys', 'rotate', '--now'], { KEYS_DIR: server.config.keysDir }, { stdout: (line) => lines.push(line), stderr: (line) => lines.push(line) });
    expect(code, lines.join('\n')).toBe(0);
    expect(await server.reloadSigningKeys()).toBe(true);

    const after = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read' });
    expect(decodeProtectedHeader(after.access_token).kid).not.toBe(decodeProtectedHeader(before.access_token).kid);
    const response = await hello(`Bearer ${after.access_token}`);
    expect(response.status).toBe(200);
    expect((await hello(`Bearer ${before.access_token}`)).status).toBe(200);
  });
});
