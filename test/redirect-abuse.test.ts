import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, textOf } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, postLogoutRedirectUri, redirectUri, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// RFC 6749 §4.1.2.1 and RFC 9700 §4.1: a redirect URI that is not registered exactly is answered with an error
// page, never a redirect, so the authorization server cannot be used as an open redirector. RP-Initiated Logout
// 1.0 §3 asks the same of post_logout_redirect_uri.

const otherAppsPostLogoutUri = 'http://localhost:8765/other-app/signed-out';
let server: TestServer;
let rp: oidc.Configuration;
let clientId: string;
let idToken: string;

beforeAll(async () => {
  server = await startTestServer();
  const client = await createClient(server.services);
  clientId = client.clientId;
  await createClient(server.services, { postLogoutRedirectUris: [otherAppsPostLogoutUri] });
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
  const user = await createUser(server.services);
  idToken = (await signIn(rp, createBrowser(), { email: user.email, password, consent: true })).tokens.id_token!;
});
afterAll(() => server.close());

/** The same tricks against any registered URI `http://localhost:8765/<path>`. */
function variantsOf(registered: string): [string, string][] {
  const { pathname } = new URL(registered);
  return [
    ['a trailing slash', `${registered}/`],
    ['another port', `http://localhost:8766${pathname}`],
    ['https instead of http', `https://localhost:8765${pathname}`],
    ['the registered host as userinfo of another', `http://localhost:8765@evil.example${pathname}`],
    ['another host', `http://evil.example${pathname}`],
    ['127.0.0.1 for localhost', `http://127.0.0.1:8765${pathname}`],
    ['an upper-case host', `http://LOCALHOST:8765${pathname}`],
    ['path traversal', `${registered}/../evil`],
    ['percent-encoded path traversal', `${registered}/%2e%2e/evil`],
    ['a percent-encoded slash', `http://localhost:8765%2F${pathname.slice(1)}`],
    ['a percent-encoded path character', `http://localhost:8765/%${pathname.charCodeAt(1).toString(16)}${pathname.slice(2)}`],
    ['an extra query', `${registered}?next=x`],
    ['a fragment', `${registered}#x`],
    ['a percent-encoded NUL', `${registered}%00`],
    ['a NUL byte', `${registered}\u0000`],
  ];
}

/** What a browser gets back: the status, the Location header and the error code shown on the page. */
async function visit(url: string | URL) {
  const response = await fetch(url, { redirect: 'manual', headers: { accept: 'text/html' } });
  const html = await response.text();
  return { status: response.status, location: response.headers.get('location'), type: response.headers.get('content-type'), html };
}

function expectErrorPage(page: Awaited<ReturnType<typeof visit>>, code: string) {
  expect(page.status).toBe(400);
  expect(page.location).toBeNull();
  expect(page.type).toMatch(/^text\/html/);
  expect(textOf(page.html, 'p.detail code')).toBe(code);
}

async function authorizationUrl(target: string) {
  return oidc.buildAuthorizationUrl(rp, {
    redirect_uri: target, scope: 'openid', state: 'some-state',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  });
}

describe('redirect_uri at the authorization endpoint', () => {
  it('redirects to the login page for the registered URI (control)', async () => {
    const page = await visit(await authorizationUrl(redirectUri));
    expect(page.status).toBe(303);
    expect(page.location).toMatch(/^\/interaction\//);
  });

  it.each(variantsOf(redirectUri))('shows an error page and does not redirect for %s', async (_trick, target) => {
    expectErrorPage(await visit(await authorizationUrl(target)), 'invalid_redirect_uri');
  });
});

const endSessionUrl = (params: Record<string, string>) => `${server.issuer}/session/end?${new URLSearchParams(params)}`;

/** Confirms the logout form shown by the end_session endpoint and returns where the first redirect points. */
async function logoutRedirect(params: Record<string, string>): Promise<URL> {
  const browser = createBrowser();
  const confirm = await browser.follow(endSessionUrl(params));
  expect(confirm.status).toBe(200);
  // `stopAt: 'h'` stops at the first redirect, wherever it points, without following it.
  const done = await browser.submit(confirm, 'form', { logout: 'yes' }, 'h');
  return new URL(done.url);
}

describe('post_logout_redirect_uri at the end_session endpoint', () => {
  it('redirects to the registered URI with a valid id_token_hint (control)', async () => {
    const target = await logoutRedirect({ id_token_hint: idToken, post_logout_redirect_uri: postLogoutRedirectUri, state: 's' });
    expect(target.href).toBe(`${postLogoutRedirectUri}?state=s`);
  });

  it.each(variantsOf(postLogoutRedirectUri))('shows an error page with an id_token_hint for %s', async (_trick, target) => {
    expectErrorPage(await visit(endSessionUrl({ id_token_hint: idToken, post_logout_redirect_uri: target })), 'invalid_request');
  });

  it.each(variantsOf(postLogoutRedirectUri))('shows an error page with a client_id for %s', async (_trick, target) => {
    expectErrorPage(await visit(endSessionUrl({ client_id: clientId, post_logout_redirect_uri: target })), 'invalid_request');
  });

  // Without id_token_hint or client_id no client is known to check the URI against: oidc-provider drops it and
  // ends the session on its own "signed out" page instead, the registered URI included.
  it.each([...variantsOf(postLogoutRedirectUri), ['the registered URI itself', postLogoutRedirectUri]])(
    'ignores it and stays on Latchkey without a hint or client_id for %s',
    async (_trick, target) => {
      const redirect = await logoutRedirect({ post_logout_redirect_uri: target, state: 's' });
      expect(redirect.origin).toBe(server.issuer);
      expect(redirect.pathname).toBe('/session/end/success');
    },
  );

  it("refuses another app's registered post-logout URI, with this app's id_token_hint or client_id", async () => {
    expectErrorPage(await visit(endSessionUrl({ id_token_hint: idToken, post_logout_redirect_uri: otherAppsPostLogoutUri })), 'invalid_request');
    expectErrorPage(await visit(endSessionUrl({ client_id: clientId, post_logout_redirect_uri: otherAppsPostLogoutUri })), 'invalid_request');
  });
});
