import { generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, textOf, type Browser } from './support/browser.js';
import { authorizeWith, redeem } from './support/conformance.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { logoutEvent, startLogoutReceiver, verifyLogoutToken } from './support/logout-receiver.js';
import { discoverRp, postLogoutRedirectUri } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// The expectations of the OpenID Foundation's RP-Initiated Logout OP and Back-Channel Logout OP test plans
// (docs/conformance.md). Each `it` names the module whose expectation it checks.

type Receiver = Awaited<ReturnType<typeof startLogoutReceiver>>;

let server: TestServer;
let receiver: Receiver;
let rp: oidc.Configuration;
let clientId: string;

beforeAll(async () => {
  [server, receiver] = await Promise.all([startTestServer(), startLogoutReceiver()]);
  const client = await createClient(server.services, { backchannelLogoutUri: receiver.url });
  clientId = client.clientId;
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(async () => {
  await Promise.all([server.close(), receiver.close()]);
});

async function signedIn() {
  const user = await createUser(server.services);
  const browser = createBrowser();
  const tokens = await redeem(rp, await authorizeWith(rp, browser, {}, { email: user.email, password }));
  return { user, browser, tokens, idToken: tokens.id_token! };
}

const endSession = (params: Record<string, string>) => `${server.issuer}/session/end?${new URLSearchParams(params)}`;

/** The end-session page for `params`, confirmed with "Yes, sign me out"; where that leads, without following it. */
async function confirmLogout(browser: Browser, params: Record<string, string>) {
  const confirm = await browser.follow(endSession(params));
  expect(confirm.status).toBe(200);
  expect(confirm.html).toContain('Yes, sign me out');
  return browser.submit(confirm, 'form', { logout: 'yes' }, postLogoutRedirectUri);
}

/** The session is over: a prompt=none request is answered login_required (every logout module checks this). */
async function expectSignedOut(browser: Browser) {
  const flow = await authorizeWith(rp, browser, { prompt: 'none' });
  expect(flow.callbackUrl.searchParams.get('error')).toBe('login_required');
}

/** Refused without a redirect to the app: an error page (the modules accept it, or a confirmation). */
async function expectNoRedirect(browser: Browser, params: Record<string, string>) {
  const page = await browser.follow(endSession(params), { headers: { accept: 'text/html' } }, postLogoutRedirectUri);
  expect(page.url.startsWith(postLogoutRedirectUri)).toBe(false);
  expect(page.status).toBe(400);
  expect(textOf(page.html, 'p.detail code')).toBe('invalid_request');
}

describe('RP-Initiated Logout OP', () => {
  it('oidcc-rp-initiated-logout-discovery-endpoint-verification: end_session_endpoint is advertised', async () => {
    const metadata = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json();
    expect(metadata.end_session_endpoint).toBe(`${server.issuer}/session/end`);
  });

  it('oidcc-rp-initiated-logout: back to the post_logout_redirect_uri with state, then signed out', async () => {
    const { browser, idToken } = await signedIn();
    const done = await confirmLogout(browser, { id_token_hint: idToken, post_logout_redirect_uri: postLogoutRedirectUri, state: 'bye' });
    expect(done.url).toBe(`${postLogoutRedirectUri}?state=bye`);
    await expectSignedOut(browser);
  });

  it('oidcc-rp-initiated-logout-no-state: back to the post_logout_redirect_uri without state, then signed out', async () => {
    const { browser, idToken } = await signedIn();
    const done = await confirmLogout(browser, { id_token_hint: idToken, post_logout_redirect_uri: postLogoutRedirectUri });
    expect(done.url).toBe(postLogoutRedirectUri);
    await expectSignedOut(browser);
  });

  it('oidcc-rp-initiated-logout-no-params, -only-state, -no-post-logout-redirect-uri: signed out, and told so', async () => {
    const cases: Array<Record<string, string>> = [{}, { state: 'only' }, { id_token_hint: '' }];
    for (const params of cases) {
      const { browser, idToken } = await signedIn();
      const sent = 'id_token_hint' in params ? { id_token_hint: idToken } : params;
      const done = await confirmLogout(browser, sent);
      const shown = await browser.follow(done.url);
      expect(shown.url.startsWith(postLogoutRedirectUri), JSON.stringify(params)).toBe(false);
      expect(shown.html).toContain('signed out');
      await expectSignedOut(browser);
    }
  });

  it('oidcc-rp-initiated-logout-bad-post-logout-redirect-uri and -query-added-to-post-logout-redirect-uri: no redirect', async () => {
    const { browser, idToken } = await signedIn();
    await expectNoRedirect(browser, { id_token_hint: idToken, post_logout_redirect_uri: 'http://localhost:8765/elsewhere' });
    await expectNoRedirect(browser, { id_token_hint: idToken, post_logout_redirect_uri: `${postLogoutRedirectUri}?foo=bar` });
  });

  it('oidcc-rp-initiated-logout-no-id-token-hint: asked to confirm, and not sent to a post_logout_redirect_uri', async () => {
    const { browser } = await signedIn();
    const done = await confirmLogout(browser, { post_logout_redirect_uri: postLogoutRedirectUri, state: 'nohint' });
    expect(done.url.startsWith(postLogoutRedirectUri)).toBe(false);
    expect((await browser.follow(done.url)).html).toContain('signed out');
    await expectSignedOut(browser);
  });

  it('oidcc-rp-initiated-logout-modified-id-token-hint: an ID token turned into alg none is refused', async () => {
    const { browser, idToken } = await signedIn();
    const [, payload] = idToken.split('.');
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`;
    await expectNoRedirect(browser, { id_token_hint: unsigned, post_logout_redirect_uri: postLogoutRedirectUri });
  });

  it('oidcc-rp-initiated-logout-bad-id-token-hint: an ID token signed by another key is refused', async () => {
    const { browser, tokens } = await signedIn();
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ ...tokens.claims() }).setProtectedHeader({ alg: 'RS256', kid: 'not-ours' }).sign(privateKey);
    await expectNoRedirect(browser, { id_token_hint: forged, post_logout_redirect_uri: postLogoutRedirectUri });
  });

  it('a POST to the end-session endpoint is answered like the GET (RP-Initiated Logout §2)', async () => {
    const { browser, idToken } = await signedIn();
    const response = await browser.request(`${server.issuer}/session/end`, {
      method: 'POST',
      body: new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: postLogoutRedirectUri, state: 'posted' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(response.status).toBe(303);
    const location = new URL(response.headers.get('location')!, `${server.issuer}/session/end`);
    expect(location.pathname).toBe('/session/end');
    const confirm = await browser.follow(location.href);
    const done = await browser.submit(confirm, 'form', { logout: 'yes' }, postLogoutRedirectUri);
    expect(done.url).toBe(`${postLogoutRedirectUri}?state=posted`);
    await expectSignedOut(browser);
  });
});

describe('Back-Channel Logout OP', () => {
  it('oidcc-backchannel-logout-discovery-endpoint-verification: back-channel logout with sid is advertised', async () => {
    const metadata = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json();
    expect(metadata).toMatchObject({ backchannel_logout_supported: true, backchannel_logout_session_supported: true });
  });

  it('oidcc-backchannel-rp-initiated-logout: a logout token to the app, back to the app, then signed out', async () => {
    const { user, browser, tokens, idToken } = await signedIn();
    const before = receiver.tokens.length;
    const done = await confirmLogout(browser, { id_token_hint: idToken, post_logout_redirect_uri: postLogoutRedirectUri, state: 'bc' });
    expect(done.url).toBe(`${postLogoutRedirectUri}?state=bc`);
    expect(receiver.tokens).toHaveLength(before + 1);
    const payload = await verifyLogoutToken(receiver.tokens.at(-1)!, server.issuer, clientId);
    expect(payload).toMatchObject({ iss: server.issuer, aud: clientId, sub: user.id, sid: tokens.claims()!.sid, events: { [logoutEvent]: {} } });
    await expectSignedOut(browser);
  });
});
