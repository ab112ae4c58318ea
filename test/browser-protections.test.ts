import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, type Page } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { sendHttp } from './support/raw-http.js';
import { authorize, discoverRp, redirectUri, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

/** An authorization request (code + PKCE) built by hand, for requests whose headers the test chooses. */
async function authorizationUrl(base: string, clientId: string) {
  return `${base}/auth?${new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  })}`;
}

function expectProtectiveHeaders(headers: Headers) {
  const csp = headers.get('content-security-policy') ?? '';
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toContain("default-src 'none'");
  expect(csp).not.toContain('unsafe-inline');
  expect(csp).not.toContain('unsafe-eval');
  expect(headers.get('x-frame-options')).toBe('DENY');
  expect(headers.get('referrer-policy')).toBe('no-referrer');
  expect(headers.get('x-content-type-options')).toBe('nosniff');
}

describe('on an http issuer with no proxy in front', () => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let clientId: string;

  beforeAll(async () => {
    server = await startTestServer();
    const client = await createClient(server.services);
    clientId = client.clientId;
    rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
  });
  afterAll(() => server.close());

  it('sends CSP without inline script, frame-ancestors none, Referrer-Policy and nosniff on every hosted page', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    const login = await browser.follow(await authorizationUrl(server.issuer, clientId));
    const consent = (await authorize(rp, browser, { email: user.email, password })).page;
    const error = await browser.follow(`${server.issuer}/interaction/no-such-interaction`);
    const discovery = await fetch(`${server.issuer}/.well-known/openid-configuration`);
    const pages: Page[] = [login, consent, error];
    expect(pages.map((page) => page.html.includes('<form') || page.status)).toEqual([true, true, 400]);
    for (const page of pages) {
      expectProtectiveHeaders(page.headers);
      // Nothing inline that the policy would have to allow: no inline script (only Latchkey's own files under
      // /assets/, as the passkey pages load), no style elements or attributes, no handlers.
      expect(page.html).not.toMatch(/<script(?![^>]*\ssrc="\/assets\/[a-z-]+\.js")|<script[^>]*>[^<]|<style|\sstyle=|\son[a-z]+=/i);
      expect(page.headers.get('strict-transport-security')).toBeNull();
    }
    expectProtectiveHeaders(discovery.headers);
  });

  it('sets every cookie HttpOnly and SameSite, and gives the session a new identifier at sign-in', async () => {
    const user = await createUser(server.services);
    const attacker = createBrowser();
    // An attacker's pre-sign-in session cookie, planted in the victim's browser (session fixation).
    await authorize(rp, attacker, { email: 'nobody@example.com', password: 'not signing in' });
    const victim = createBrowser();
    const planted = await attacker.jar.getCookies(server.issuer);
    for (const cookie of planted) await victim.jar.setCookie(cookie.clone()!, server.issuer);

    const { page } = await authorize(rp, victim, { email: user.email, password, consent: true });
    expect(page.url.startsWith(redirectUri)).toBe(true);
    const cookies = await victim.jar.getCookies(server.issuer);
    expect(cookies.length).toBeGreaterThan(0);
    for (const cookie of cookies) {
      expect(cookie.httpOnly).toBe(true);
      expect(cookie.sameSite).toBe('lax');
      expect(cookie.secure).toBe(false);
    }
    const sessionAfter = cookies.find((cookie) => cookie.key === '_session')!;
    const sessionBefore = planted.find((cookie) => cookie.key === '_session');
    expect(sessionAfter.value).not.toBe(sessionBefore?.value);

    // The attacker's copy of the old identifier is not signed in as the victim.
    const attackerAgain = await authorize(rp, attacker, { email: 'nobody@example.com', password: 'not signing in' });
    expect(attackerAgain.page.url).toContain('/interaction/');
    expect(attackerAgain.page.html).toContain('name="password"');
  });

  it('ignores X-Forwarded-For and X-Forwarded-Proto: the client IP is the peer address', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    const forged = { 'x-forwarded-for': '203.0.113.66', 'x-forwarded-proto': 'https' };
    const response = await browser.request(await authorizationUrl(server.issuer, clientId), { headers: forged });
    expect(response.headers.get('strict-transport-security')).toBeNull();
    const cookies = response.headers.getSetCookie();
    expect(cookies.length).toBeGreaterThan(0);
    for (const cookie of cookies) expect(cookie.toLowerCase()).not.toContain('secure');

    const login = await browser.follow(new URL(response.headers.get('location')!, server.issuer).href);
    await browser.request(`${login.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...forged },
      body: new URLSearchParams({ email: user.email, password: 'wrong password', csrf: login.html.match(/name="csrf" value="([^"]+)"/)![1] }),
    });
    await server.services.audit.settled();
    const [failure] = await server.services.auditEvents.list({ email: user.email, limit: 10 });
    expect(failure.type).toBe('sign_in.failure');
    expect(failure.ip).toMatch(/127\.0\.0\.1|::1/);
  });

  it('still signs in through the hosted pages with these headers in place', async () => {
    const user = await createUser(server.services);
    const { tokens } = await signIn(rp, createBrowser(), { email: user.email, password, consent: true });
    expect(tokens.claims()!.sub).toBe(user.id);
  });
});

describe('on an https issuer behind a TLS-terminating proxy (TRUST_PROXY=1)', () => {
  let server: TestServer;
  let clientId: string;

  beforeAll(async () => {
    // The issuer is the proxy's public URL; the test talks to Latchkey's own port, as the proxy would.
    server = await startTestServer({ issuer: 'https://id.example.test', trustedProxyCount: 1 });
    clientId = (await createClient(server.services)).clientId;
  });
  afterAll(() => server.close());

  /** A request as the proxy forwards it: the public Host passed on unchanged (fetch cannot send its own Host). */
  async function viaProxy(target: string, headers: Record<string, string> = {}, post?: string) {
    const answer = await sendHttp(server.port, {
      target, method: post === undefined ? 'GET' : 'POST', body: post,
      headers: { host: 'id.example.test', ...(post === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }), ...headers },
    });
    const responseHeaders = new Headers();
    for (const [name, value] of Object.entries(answer.headers)) {
      for (const one of [value ?? []].flat()) responseHeaders.append(name, one);
    }
    return { status: answer.status, headers: responseHeaders, text: answer.body };
  }
  const startAuthorizationViaProxy = async (headers: Record<string, string> = {}) => viaProxy(await authorizationUrl('', clientId), headers);

  it('marks every cookie Secure and sends HSTS when the proxy says the request came over https', async () => {
    const response = await startAuthorizationViaProxy({ 'x-forwarded-proto': 'https' });
    expect(response.status).toBe(303);
    expect(response.headers.get('strict-transport-security')).toBe('max-age=31536000');
    const cookies = response.headers.getSetCookie();
    expect(cookies.length).toBeGreaterThan(0);
    for (const cookie of cookies) expect(cookie.toLowerCase()).toMatch(/; secure(;|$)/);
    expectProtectiveHeaders(response.headers);
  });

  it('refuses a request that did not come over https, so no cookie is ever sent in clear text', async () => {
    const response = await startAuthorizationViaProxy();
    expect(response.status).toBe(403);
    expect(response.headers.getSetCookie()).toEqual([]);
    expect(response.text).toContain('HTTPS required');
    // Load-balancer health probes speak plain HTTP, to the address.
    expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
  });

  it('takes the client IP from the address the proxy appended, not from what the client put in front of it', async () => {
    const user = await createUser(server.services);
    const headers = { 'x-forwarded-proto': 'https', 'x-forwarded-for': '10.9.9.9, 198.51.100.7' };
    const first = await startAuthorizationViaProxy(headers);
    const cookie = first.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ');
    const loginUrl = new URL(first.headers.get('location')!, server.issuer).pathname;
    const login = await viaProxy(loginUrl, { ...headers, cookie });
    const csrf = login.text.match(/name="csrf" value="([^"]+)"/)![1];
    await viaProxy(`${loginUrl}/login`, { ...headers, cookie }, new URLSearchParams({ email: user.email, password: 'wrong password', csrf }).toString());
    await server.services.audit.settled();
    const [failure] = await server.services.auditEvents.list({ email: user.email, limit: 10 });
    expect(failure).toMatchObject({ type: 'sign_in.failure', ip: '198.51.100.7' });
  });
});
