import makeFetchCookie from 'fetch-cookie';
import { parse } from 'node-html-parser';
import * as oidc from 'openid-client';
import { CookieJar } from 'tough-cookie';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rotateSigningKey } from '../src/signing-keys.js';
import { createBrowser } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, redirectUri, signIn } from './support/rp.js';
import { sendBytes, sendHttp } from './support/raw-http.js';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * Every URL Latchkey publishes or redirects to derives from ISSUER (OpenID Connect Discovery 1.0 §4.3, RFC 8414 §3),
 * never from Host, X-Forwarded-Host or an absolute-form request target, and a request addressed to another host is
 * refused. Each server here trusts one proxy (TRUST_PROXY=1), the setting under which Koa would read
 * X-Forwarded-Host; fetch cannot forge Host, so those requests go through node:http or a raw socket.
 */

const evil = 'evil.example:666';
const discoveryPath = '/.well-known/openid-configuration';
const jwksPath = '/.well-known/jwks.json';

const lines: string[] = [];
let server: TestServer;
let issuerHost: string;

beforeAll(async () => {
  server = await startTestServer({ trustedProxyCount: 1 }, undefined, { logDestination: { write: (line: string) => void lines.push(line) } });
  issuerHost = new URL(server.issuer).host;
});
afterAll(() => server.close());

/** Every URL in a discovery document, by field; the endpoints a client uses must all be among them. */
function urlsOf(metadata: Record<string, unknown>): Record<string, string> {
  const urls = Object.fromEntries(Object.entries(metadata).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && /^https?:/.test(entry[1])));
  expect(Object.keys(urls)).toEqual(expect.arrayContaining([
    'issuer', 'authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'end_session_endpoint',
    'introspection_endpoint', 'revocation_endpoint', 'pushed_authorization_request_endpoint',
  ]));
  return urls;
}

function expectOnlyIssuerUrls(metadata: Record<string, unknown>, issuer: string) {
  for (const [field, url] of Object.entries(urlsOf(metadata))) expect(`${field}: ${new URL(url).origin}`).toBe(`${field}: ${issuer}`);
}

/** The attempts the review made: forged Host, forged X-Forwarded-Host, an absolute-form target naming another host. */
async function tryToPoison(target: TestServer, path: string) {
  const host = new URL(target.issuer).host;
  const forgedHost = await sendHttp(target.port, { target: path, headers: { host: evil, 'x-forwarded-host': evil } });
  expect(forgedHost.status).toBe(421);
  const absolute = await sendHttp(target.port, { target: `http://${evil}${path}`, headers: { host } });
  expect(absolute.status).toBe(421);
  // The Host is right, so the request is served; X-Forwarded-Host is not read.
  const forgedForwardedHost = await sendHttp(target.port, { target: path, headers: { host, 'x-forwarded-host': evil, 'x-forwarded-proto': 'http' } });
  expect(forgedForwardedHost.status).toBe(200);
  return JSON.parse(forgedForwardedHost.body) as Record<string, unknown>;
}

describe('discovery and the JWKS under forged host headers', () => {
  it('publishes only the issuer\'s URLs when the first discovery request after a start or a key rotation is forged', async () => {
    const fresh = await startTestServer({ trustedProxyCount: 1 });
    try {
      for (const round of ['after the start', 'after a key rotation']) {
        const answered = await tryToPoison(fresh, discoveryPath);
        expectOnlyIssuerUrls(answered, fresh.issuer);
        await tryToPoison(fresh, jwksPath);
        const later = await (await fetch(`${fresh.issuer}${discoveryPath}`)).json() as Record<string, unknown>;
        expectOnlyIssuerUrls(later, fresh.issuer);
        expect(later, round).toEqual(answered);
        const jwks = await fetch(`${fresh.issuer}${jwksPath}`);
        expect(jwks.status).toBe(200);
        if (round === 'after the start') {
          await rotateSigningKey(fresh.config.keysDir);
          expect(await fresh.reloadSigningKeys()).toBe(true);
        }
      }
    } finally {
      await fresh.close();
    }
  });

  it('answers every client with the same bytes: CORS is `*`, not the caller\'s Origin', async () => {
    const plain = await fetch(`${server.issuer}${discoveryPath}`);
    const fromApp = await fetch(`${server.issuer}${discoveryPath}`, { headers: { origin: 'https://app.example' } });
    expect(fromApp.headers.get('access-control-allow-origin')).toBe('*');
    expect(fromApp.headers.get('vary') ?? '').not.toMatch(/origin/i);
    expect(await fromApp.text()).toBe(await plain.text());
  });

  it('serves an absolute-form request for the issuer\'s own origin, whatever its Host says (RFC 9112 §3.2.2)', async () => {
    const answer = await sendHttp(server.port, { target: `${server.issuer}${discoveryPath}`, headers: { host: evil } });
    expect(answer.status).toBe(200);
    expectOnlyIssuerUrls(JSON.parse(answer.body), server.issuer);
  });
});

describe('a request addressed to another host', () => {
  it('gets 421 and a page that names the issuer and links to the same page there', async () => {
    const answer = await sendHttp(server.port, { target: '/auth?client_id=app', headers: { host: `127.0.0.1:${server.port}`, accept: 'text/html' } });
    expect(answer.status).toBe(421);
    expect(answer.headers['content-type']).toMatch(/html/);
    const page = parse(answer.body);
    expect(page.querySelector('[role=alert]')!.text).toContain(`served at ${server.issuer} only, not at 127.0.0.1:${server.port}`);
    expect(page.querySelector('a')!.getAttribute('href')).toBe(`${server.issuer}/auth?client_id=app`);
    expect(answer.headers['set-cookie']).toBeUndefined();
  });

  it('gets the OAuth error as JSON when it does not ask for HTML', async () => {
    const answer = await sendHttp(server.port, { method: 'POST', target: '/token', headers: { host: evil, accept: 'application/json' } });
    expect(answer.status).toBe(421);
    expect(JSON.parse(answer.body)).toEqual({ error: 'invalid_request', error_description: `This Latchkey is served at ${server.issuer} only, not at ${evil}.` });
  });

  it('is offered a link on the issuer\'s origin only, even for a path that looks like another host', async () => {
    const answer = await sendHttp(server.port, { target: '//evil.example/x', headers: { host: evil, accept: 'text/html' } });
    expect(answer.status).toBe(421);
    const link = parse(answer.body).querySelector('a')!.getAttribute('href')!;
    expect(new URL(link).origin).toBe(server.issuer);
  });

  it('is refused even with a forwarded host that names the issuer', async () => {
    const answer = await sendHttp(server.port, { target: discoveryPath, headers: { host: evil, 'x-forwarded-host': issuerHost } });
    expect(answer.status).toBe(421);
  });

  it('still reaches /healthz, which load balancers probe by address', async () => {
    const answer = await sendHttp(server.port, { target: '/healthz', headers: { host: '10.0.0.5:8080' } });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ status: 'ok' });
  });

  it('is told apart from the issuer\'s host spelled another way: case and the default port', async () => {
    const other = await startTestServer({ issuer: 'http://id.example.test' });
    try {
      for (const host of ['id.example.test', 'ID.Example.Test', 'id.example.test:80']) {
        expect((await sendHttp(other.port, { target: discoveryPath, headers: { host } })).status).toBe(200);
      }
      for (const host of ['id.example.test:8080', 'id.example.test.', 'sub.id.example.test']) {
        expect((await sendHttp(other.port, { target: discoveryPath, headers: { host } })).status).toBe(421);
      }
    } finally {
      await other.close();
    }
  });
});

describe('a malformed Host header', () => {
  for (const host of ['[::1', 'a"><script>alert(1)</script>', '']) {
    for (const path of ['/auth?client_id=app&response_type=code', '/session/end']) {
      it(`answers ${JSON.stringify(host)} on ${path.split('?')[0]} with a 400 page and logs no server error`, async () => {
        const before = lines.length;
        const answer = await sendBytes(server.port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAccept: text/html\r\nConnection: close\r\n\r\n`);
        expect(answer.status).toBe(400);
        expect(answer.headers['content-type']).toMatch(/html/);
        expect(parse(answer.body).querySelector('[role=alert]')!.text).toBe('The request has a missing or malformed Host header.');
        expect(answer.body).not.toContain('<script>');
        await server.services.audit.settled();
        const logged = lines.slice(before).map((line) => JSON.parse(line) as { level: number; event?: string });
        expect(logged.filter((line) => line.event === 'server_error' || line.level >= 50)).toEqual([]);
      });
    }
  }
});

describe('sign-in and logout with a forged X-Forwarded-Host on every request', () => {
  it('redirects only to the issuer and the app, and every form posts to the issuer', async () => {
    const client = await createClient(server.services);
    const user = await createUser(server.services);
    const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const jar = new CookieJar();
    const cookieFetch = makeFetchCookie((url: string | URL | Request, init?: RequestInit) =>
      fetch(url, { ...init, headers: { ...init?.headers as Record<string, string>, 'x-forwarded-host': evil } }), jar);
    const forged = (url: string, init?: RequestInit) => cookieFetch(url, { ...init, redirect: 'manual' });
    const locations: string[] = [];
    const actions: string[] = [];

    /** Follows redirects within Latchkey, recording every Location, until a page is shown or the app is reached. */
    async function follow(url: string, init?: RequestInit): Promise<{ url: string; html: string }> {
      let response = await forged(url, init);
      let current = url;
      while (response.status >= 300 && response.status < 400) {
        const location = response.headers.get('location')!;
        locations.push(location);
        current = new URL(location, current).href;
        if (current.startsWith(redirectUri)) return { url: current, html: '' };
        response = await forged(current);
      }
      const html = await response.text();
      actions.push(...parse(html).querySelectorAll('form').map((form) => form.getAttribute('action')!));
      return { url: current, html };
    }
    const post = (url: string, fields: Record<string, string>) =>
      follow(url, { method: 'POST', body: new URLSearchParams(fields), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const hidden = (html: string, name: string) => parse(html).querySelector(`input[name=${name}]`)!.getAttribute('value')!;

    const authorization = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: redirectUri, scope: 'openid', state: 'st', code_challenge_method: 'S256',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    });
    const login = await follow(authorization.href);
    expect(login.html).toContain('name="password"');
    const actionOf = (page: { url: string; html: string }) => new URL(parse(page.html).querySelector('form')!.getAttribute('action')!, page.url).href;
    const consent = await post(actionOf(login), { csrf: hidden(login.html, 'csrf'), email: user.email, password });
    expect(consent.html).toContain('Allow access?');
    const done = await post(actionOf(consent), { csrf: hidden(consent.html, 'csrf') });
    expect(done.url.startsWith(`${redirectUri}?`)).toBe(true);

    const logout = await follow(`${server.issuer}/session/end?client_id=${client.clientId}`);
    const form = parse(logout.html).querySelector('form')!;
    await post(new URL(form.getAttribute('action')!, logout.url).href, { xsrf: hidden(logout.html, 'xsrf'), logout: 'yes' });

    expect(locations.length).toBeGreaterThanOrEqual(4);
    for (const target of [...locations, ...actions]) {
      const url = new URL(target, server.issuer);
      expect(target.startsWith('/') || url.origin === server.issuer || url.href.startsWith(redirectUri), target).toBe(true);
      expect(target).not.toContain('evil.example');
    }
    expect(actions).toContain(`${server.issuer}/session/end/confirm`);
  });
});

describe('a relying party after poisoning attempts', () => {
  it('discovers the real endpoints with openid-client and signs in through them', async () => {
    const fresh = await startTestServer({ trustedProxyCount: 1 });
    try {
      await tryToPoison(fresh, discoveryPath);
      await tryToPoison(fresh, jwksPath);
      const client = await createClient(fresh.services);
      const user = await createUser(fresh.services);
      const rp = await discoverRp(fresh.issuer, client.clientId, client.clientSecret!);
      expectOnlyIssuerUrls(rp.serverMetadata() as Record<string, unknown>, fresh.issuer);
      const { tokens } = await signIn(rp, createBrowser(), { email: user.email, password, consent: true });
      expect(tokens.claims()!.iss).toBe(fresh.issuer);
      expect((await oidc.fetchUserInfo(rp, tokens.access_token, tokens.claims()!.sub)).email).toBe(user.email);
    } finally {
      await fresh.close();
    }
  });
});
