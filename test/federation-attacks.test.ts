import * as oidc from 'openid-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, textOf, type Browser, type Page } from './support/browser.js';
import { federatedSignIn } from './support/federation.js';
import { createClient, createUser } from './support/fixtures.js';
import { discoverRp, redirectUri } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';
import { createSigningKey, startUpstreamProvider, type UpstreamProvider } from './support/upstream-provider.js';

// The upstream is a small real OpenID Connect provider that misbehaves on request (support/upstream-provider.ts);
// Latchkey talks to it over HTTP with openid-client like to any upstream.
let upstream: UpstreamProvider;
let latchkey: TestServer;
let rp: oidc.Configuration;
let clock = Date.now();
const connection = 'rogue';

beforeAll(async () => {
  upstream = await startUpstreamProvider();
  latchkey = await startTestServer({ upstreamTimeoutSeconds: 1, upstreamMetadataTtlSeconds: 60 }, undefined, { now: () => clock });
  await latchkey.services.connections.create({ id: connection, name: 'Rogue IdP', issuer: upstream.issuer, clientId: 'latchkey', clientSecret: 's3cret-upstream' });
  const app = await createClient(latchkey.services, { skipConsent: true });
  rp = await discoverRp(latchkey.issuer, app.clientId, app.clientSecret!);
});
afterAll(async () => {
  await latchkey?.close();
  await upstream?.close();
});
beforeEach(() => upstream.behave({}));

/** The app's request, then the button on Latchkey's login page; stops where the browser would go to the upstream. */
async function startAtLatchkey(browser: Browser): Promise<{ authorizeUrl: string; loginPage: Page }> {
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: redirectUri, scope: 'openid email', state: oidc.randomState(), nonce: oidc.randomNonce(),
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  });
  const loginPage = await browser.follow(url.href);
  const toUpstream = await browser.submit(loginPage, `form[action$="/federated/${connection}"]`, {}, upstream.issuer);
  return { authorizeUrl: toUpstream.url, loginPage };
}

/** What the upstream answers to its authorization request: the callback URL at Latchkey, with code and state. */
async function upstreamCallback(authorizeUrl: string): Promise<string> {
  const response = await fetch(authorizeUrl, { redirect: 'manual' });
  return response.headers.get('location')!;
}

function expectFailurePage(page: Page, reason: string, status: number) {
  expect(page.status).toBe(status);
  expect(page.headers.get('content-type')).toContain('text/html');
  expect(textOf(page.html, 'code')).toBe(reason);
  expect(page.html).not.toMatch(/at .*\.(ts|js):\d+/);
}

async function lastRefusal() {
  await latchkey.services.audit.settled();
  const events = await latchkey.services.auditEvents.list({ limit: 20 });
  return events.findLast((event) => event.type === 'federation.refused');
}

const signInAtRogue = () => federatedSignIn(rp, createBrowser(), { connection, upstreamIssuer: upstream.issuer });

describe('a well-behaved upstream', () => {
  it('signs the person in (the baseline every attack below departs from)', async () => {
    const { claims } = await signInAtRogue();
    expect(claims.amr).toEqual(['fed']);
    expect((await latchkey.services.accounts.findById(claims.sub))!.email).toBe('rogue.user@example.com');
  });
});

describe('attacks on the callback', () => {
  it('refuses a state Latchkey never sent', async () => {
    const browser = createBrowser();
    const { authorizeUrl } = await startAtLatchkey(browser);
    const callback = new URL(await upstreamCallback(authorizeUrl));
    callback.searchParams.set('state', oidc.randomState());
    const page = await browser.follow(callback.href, {}, redirectUri);
    expectFailurePage(page, 'state_mismatch', 400);
    expect(page.html).toContain('Go back to the application');
    expect((await lastRefusal())?.details).toMatchObject({ reason: 'state_mismatch' });
  });

  it('refuses a response delivered to another connection\'s callback (mix-up)', async () => {
    const browser = createBrowser();
    const { authorizeUrl } = await startAtLatchkey(browser);
    const callback = new URL(await upstreamCallback(authorizeUrl));
    callback.pathname = '/connections/other/callback';
    expectFailurePage(await browser.follow(callback.href, {}, redirectUri), 'state_mismatch', 400);
  });

  it('refuses a response whose RFC 9207 iss names another issuer (mix-up)', async () => {
    const browser = createBrowser();
    const { authorizeUrl } = await startAtLatchkey(browser);
    const callback = new URL(await upstreamCallback(authorizeUrl));
    callback.searchParams.set('iss', 'https://other-idp.example');
    expectFailurePage(await browser.follow(callback.href, {}, redirectUri), 'invalid_response', 502);
  });

  it('does not finish a sign-in in another browser, and the callback works once in the right one', async () => {
    const victim = createBrowser();
    const { authorizeUrl } = await startAtLatchkey(victim);
    const callback = await upstreamCallback(authorizeUrl);

    // Someone else's browser (a login CSRF: the attacker's own callback URL sent to a victim, or a stolen one).
    const other = createBrowser();
    const stolen = await other.follow(callback, {}, redirectUri);
    expectFailurePage(stolen, 'interaction_expired', 400);

    const finished = await victim.follow(callback, {}, redirectUri);
    expect(finished.url.startsWith(redirectUri)).toBe(true);
    expect(new URL(finished.url).searchParams.get('code')).toBeTruthy();

    // Replayed in the same browser afterwards: the interaction is gone and the state used up.
    const replayed = await victim.follow(callback, {}, redirectUri);
    expect(replayed.url.startsWith(redirectUri)).toBe(false);
    expect(replayed.status).toBe(400);
  });

  it('refuses a callback whose interaction has ended', async () => {
    const browser = createBrowser();
    const { authorizeUrl, loginPage } = await startAtLatchkey(browser);
    const uid = loginPage.url.split('/interaction/')[1]!;
    await latchkey.database('oidc_payloads').where({ model: 'Interaction', id: uid }).delete();
    const page = await browser.follow(await upstreamCallback(authorizeUrl), {}, redirectUri);
    expectFailurePage(page, 'interaction_expired', 400);
  });

  it('shows the cancellation with a way back when the person says no upstream', async () => {
    const browser = createBrowser();
    const { authorizeUrl, loginPage } = await startAtLatchkey(browser);
    const callback = new URL(await upstreamCallback(authorizeUrl));
    callback.searchParams.delete('code');
    callback.searchParams.set('error', 'access_denied');
    const page = await browser.follow(callback.href, {}, redirectUri);
    expectFailurePage(page, 'cancelled', 200);
    expect(textOf(page.html, '.error')).toBe('Signing in with Rogue IdP was cancelled.');
    const back = page.html.match(/href="(\/interaction\/[^"]+)"/)![1]!;
    expect(loginPage.url).toBe(`${latchkey.issuer}${back}`);
    const again = await browser.follow(`${latchkey.issuer}${back}`);
    expect(again.html).toContain('Continue with Rogue IdP');
  });

  it('ends on a readable page when the connection is deleted mid-flow', async () => {
    await latchkey.services.connections.create({ id: 'short-lived', name: 'Short-lived', issuer: upstream.issuer, clientId: 'latchkey' });
    const browser = createBrowser();
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: redirectUri, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256',
    });
    const loginPage = await browser.follow(url.href);
    const toUpstream = await browser.submit(loginPage, 'form[action$="/federated/short-lived"]', {}, upstream.issuer);
    await latchkey.services.connections.delete('short-lived');
    const page = await browser.follow(await upstreamCallback(toUpstream.url), {}, redirectUri);
    expectFailurePage(page, 'unknown_connection', 400);
    expect((await lastRefusal())?.details).toMatchObject({ reason: 'unknown_connection', deletedMidFlow: true });
  });
});

describe('a sealed client secret that does not open', () => {
  it('shows a readable 503 for a secret copied from another connection\'s row', async () => {
    await latchkey.services.connections.create({ id: 'copied', name: 'Copied', issuer: upstream.issuer, clientId: 'latchkey', clientSecret: 'mine' });
    const [rogue] = await latchkey.database('connections').where({ id: connection });
    await latchkey.database('connections').where({ id: 'copied' }).update({ client_secret_encrypted: rogue.client_secret_encrypted, updated_at: Date.now() + 1 });
    const browser = createBrowser();
    const url = oidc.buildAuthorizationUrl(rp, { redirect_uri: redirectUri, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
    const page = await browser.submit(await browser.follow(url.href), 'form[action$="/federated/copied"]', {}, upstream.issuer);
    expectFailurePage(page, 'connection_misconfigured', 503);
    await latchkey.services.connections.delete('copied');
  });
});

describe('attacks in the ID token', () => {
  async function refusedToken(reason = 'invalid_response', status = 502) {
    const before = (await latchkey.services.accounts.list()).length;
    const browser = createBrowser();
    const { authorizeUrl } = await startAtLatchkey(browser);
    const page = await browser.follow(await upstreamCallback(authorizeUrl), {}, redirectUri);
    expectFailurePage(page, reason, status);
    expect(page.html).toContain('Back to sign in');
    expect((await latchkey.services.accounts.list()).length).toBe(before);
    return page;
  }

  it('refuses a nonce other than the one sent', async () => {
    upstream.behave({ claims: (claims) => ({ ...claims, sub: 'nonce-victim', nonce: 'n-0S6_WzA2Mj' }) });
    await refusedToken();
    expect((await lastRefusal())?.details).toMatchObject({ reason: 'invalid_response' });
  });

  it('refuses an ID token without the nonce', async () => {
    upstream.behave({ claims: ({ nonce: _nonce, ...claims }) => ({ ...claims, sub: 'nonce-less' }) });
    await refusedToken();
  });

  it('refuses an ID token signed by a key the upstream does not publish, even under a published kid', async () => {
    upstream.behave({ signWith: await createSigningKey('key-1'), claims: (claims) => ({ ...claims, sub: 'forged' }) });
    await refusedToken();
  });

  it('refuses an ID token from another issuer (mix-up)', async () => {
    upstream.behave({ claims: (claims) => ({ ...claims, sub: 'other-iss', iss: 'https://other-idp.example' }) });
    await refusedToken();
  });

  it('refuses an ID token for another audience, and one whose azp is another client', async () => {
    upstream.behave({ claims: (claims) => ({ ...claims, sub: 'other-aud', aud: 'another-client' }) });
    await refusedToken();
    upstream.behave({ claims: (claims) => ({ ...claims, sub: 'other-azp', aud: [claims.aud, 'another-client'], azp: 'another-client' }) });
    await refusedToken();
  });

  it('refuses an expired ID token', async () => {
    const now = Math.floor(Date.now() / 1000);
    upstream.behave({ claims: (claims) => ({ ...claims, sub: 'expired', iat: now - 3600, exp: now - 600 }) });
    await refusedToken();
  });

  it('refuses a look-alike email without leaving half an account behind', async () => {
    await createUser(latchkey.services, { email: 'ace@example.com' });
    upstream.behave({ claims: (claims) => ({ ...claims, sub: 'look-alike', email: '\u0430ce@example.com' }) });
    await refusedToken('email_taken', 403);
    expect(await latchkey.services.connections.links()).not.toContainEqual(expect.objectContaining({ subject: 'look-alike' }));
  });
});

describe('an upstream that fails', () => {
  it('shows a readable page when the token endpoint answers 500', async () => {
    upstream.behave({ status: 500 });
    const browser = createBrowser();
    const { authorizeUrl } = await startAtLatchkey(browser);
    const page = await browser.follow(await upstreamCallback(authorizeUrl), {}, redirectUri);
    expect(page.status).toBeGreaterThanOrEqual(502);
    expect(['upstream_error', 'upstream_unavailable']).toContain(textOf(page.html, 'code'));
    expect(page.html).toContain('Back to sign in');
  });

  it('gives up on an upstream that hangs after UPSTREAM_TIMEOUT', async () => {
    upstream.behave({ hang: true });
    const browser = createBrowser();
    const { authorizeUrl } = await startAtLatchkey(browser);
    const started = Date.now();
    const page = await browser.follow(await upstreamCallback(authorizeUrl), {}, redirectUri);
    expectFailurePage(page, 'upstream_unavailable', 504);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('shows a readable page when the discovery document cannot be read', async () => {
    clock += 61_000;
    upstream.failDiscovery(500);
    try {
      const browser = createBrowser();
      const url = oidc.buildAuthorizationUrl(rp, { redirect_uri: redirectUri, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
      const page = await browser.submit(await browser.follow(url.href), `form[action$="/federated/${connection}"]`, {}, upstream.issuer);
      expectFailurePage(page, 'upstream_unavailable', 504);
    } finally {
      upstream.failDiscovery(200);
    }
  });
});

describe('upstream signing keys', () => {
  it('does not refetch the JWKS for every token with an unknown kid (rate-limited)', async () => {
    await signInAtRogue();
    const fetched = upstream.jwksRequests;
    upstream.behave({ signWith: await createSigningKey('unknown-kid'), claims: (claims) => ({ ...claims, sub: 'unknown-kid' }) });
    for (let i = 0; i < 3; i++) {
      const browser = createBrowser();
      const { authorizeUrl } = await startAtLatchkey(browser);
      expectFailurePage(await browser.follow(await upstreamCallback(authorizeUrl), {}, redirectUri), 'invalid_response', 502);
    }
    expect(upstream.jwksRequests).toBe(fetched);
  });

  it('accepts the upstream\'s new key after a rotation once the cached metadata ages out, without a restart', async () => {
    await signInAtRogue();
    await upstream.rotateKey('key-2', true);
    const browser = createBrowser();
    const { authorizeUrl } = await startAtLatchkey(browser);
    expectFailurePage(await browser.follow(await upstreamCallback(authorizeUrl), {}, redirectUri), 'invalid_response', 502);
    clock += 61_000;
    const { claims } = await signInAtRogue();
    expect(claims.amr).toEqual(['fed']);
  });
});
