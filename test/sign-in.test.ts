import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, textOf } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { authorize, discoverRp, redirectUri, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

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

describe('authorization code flow with PKCE', () => {
  it('signs a user in through the login and consent pages and returns a validated ID token', async () => {
    const user = await createUser(server.services, { email: 'Grace.Hopper@Example.com', givenName: 'Grace', familyName: 'Hopper' });
    const browser = createBrowser();
    const { tokens, callbackUrl, state } = await signIn(rp, browser, { email: 'grace.hopper@example.com', password, consent: true });

    expect(callbackUrl.searchParams.get('state')).toBe(state);
    expect(callbackUrl.searchParams.get('iss')).toBe(server.issuer);
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(user.id);
    expect(claims.iss).toBe(server.issuer);
    expect(claims.aud).toBe(clientId);

    const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, user.id);
    expect(userinfo).toMatchObject({
      sub: user.id, email: 'grace.hopper@example.com', email_verified: true,
      given_name: 'Grace', family_name: 'Hopper', name: 'Grace Hopper',
    });
  });

  it('releases only the claims of the granted scopes at userinfo', async () => {
    const user = await createUser(server.services);
    const { tokens } = await signIn(rp, createBrowser(), { email: user.email, password, scope: 'openid email', consent: true });
    const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, user.id);
    expect(userinfo.email).toBe(user.email);
    expect(userinfo.given_name).toBeUndefined();
    expect(userinfo.name).toBeUndefined();
  });

  it('signs in again without a password while the Latchkey session lasts (SSO)', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    await signIn(rp, browser, { email: user.email, password, consent: true });
    const again = await signIn(rp, browser, { email: 'unused', password: 'unused' });
    expect(again.tokens.claims()!.sub).toBe(user.id);
  });

  it('shows one generic error for a wrong password and for an unknown email', async () => {
    const user = await createUser(server.services);
    const wrongPassword = await authorize(rp, createBrowser(), { email: user.email, password: 'not the password' });
    const unknownEmail = await authorize(rp, createBrowser(), { email: 'nobody@example.com', password });
    for (const { page } of [wrongPassword, unknownEmail]) {
      expect(page.url).toContain('/interaction/');
      expect(page.status).toBe(200);
      expect(textOf(page.html, '.error')).toBe('Incorrect email or password.');
    }
  });

  it('refuses a disabled user at the login page with the same generic error', async () => {
    const user = await createUser(server.services);
    await server.services.accounts.disable(user.email);
    const { page } = await authorize(rp, createBrowser(), { email: user.email, password });
    expect(textOf(page.html, '.error')).toBe('Incorrect email or password.');
  });

  it('redirects with access_denied when the user denies consent', async () => {
    const user = await createUser(server.services);
    const { callbackUrl, state } = await authorize(rp, createBrowser(), { email: user.email, password, consent: false });
    expect(callbackUrl.href.startsWith(redirectUri)).toBe(true);
    expect(callbackUrl.searchParams.get('error')).toBe('access_denied');
    expect(callbackUrl.searchParams.get('state')).toBe(state);
  });

  it('skips the consent page for a first-party client', async () => {
    const client = await createClient(server.services, { skipConsent: true });
    const firstParty = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const user = await createUser(server.services);
    const { tokens } = await signIn(firstParty, createBrowser(), { email: user.email, password });
    expect(tokens.claims()!.sub).toBe(user.id);
  });

  it('gives a first-party client its grant in the authorization request itself, with no interaction page after the login', async () => {
    const client = await createClient(server.services, { skipConsent: true });
    const firstParty = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const user = await createUser(server.services);
    const browser = createBrowser();
    const url = oidc.buildAuthorizationUrl(firstParty, {
      redirect_uri: redirectUri, scope: 'openid email', state: oidc.randomState(),
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    });
    const login = await browser.follow(url.href);
    // The login form answers with the resumed authorization request; stop there and send it by hand.
    const resume = await browser.submit(login, 'form[action$="/login"]', { email: user.email, password }, `${server.issuer}/auth/`);
    const resumed = await browser.request(resume.url);
    expect(resumed.status).toBe(303);
    expect(resumed.headers.get('location')).toMatch(new RegExp(`^${redirectUri}\\?code=`));
  });

  it('refuses a login form posted without the CSRF token', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    const { page } = await authorize(rp, browser, { email: user.email, password: 'wrong password 1' });
    const response = await browser.request(`${page.url.replace(/\/login$/, "")}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ email: user.email, password }),
    });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('did not come from this site');
  });
});

describe('authorization request errors', () => {
  it('shows an error page and does not redirect to an unregistered redirect URI', async () => {
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: 'https://evil.example/callback',
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const response = await fetch(url, { redirect: 'manual' });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    const html = await response.text();
    expect(html).toContain('redirect_uri');
    expect(html).not.toContain('evil.example/callback?');
  });

  it('rejects an authorization request without PKCE', async () => {
    const url = oidc.buildAuthorizationUrl(rp, { redirect_uri: redirectUri, scope: 'openid' });
    const response = await fetch(url, { redirect: 'manual' });
    const location = new URL(response.headers.get('location')!);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('error_description')).toMatch(/PKCE/);
  });

  it('rejects the plain PKCE method', async () => {
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: redirectUri, scope: 'openid', code_challenge: oidc.randomPKCECodeVerifier(), code_challenge_method: 'plain',
    });
    const response = await fetch(url, { redirect: 'manual' });
    const location = new URL(response.headers.get('location')!);
    expect(location.searchParams.get('error')).toBe('invalid_request');
  });

  it('does not support the implicit flow', async () => {
    const url = oidc.buildAuthorizationUrl(rp, { redirect_uri: redirectUri, scope: 'openid', response_type: 'id_token', nonce: 'n' });
    const response = await fetch(url, { redirect: 'manual' });
    const location = new URL(response.headers.get('location')!);
    expect(location.searchParams.get('error') ?? new URLSearchParams(location.hash.slice(1)).get('error')).toBe('unsupported_response_type');
  });
});

describe('code exchange', () => {
  it('rejects a code verifier that does not match the challenge', async () => {
    const user = await createUser(server.services);
    const flow = await authorize(rp, createBrowser(), { email: user.email, password, consent: true });
    await expect(oidc.authorizationCodeGrant(rp, flow.callbackUrl, {
      pkceCodeVerifier: oidc.randomPKCECodeVerifier(), expectedState: flow.state, expectedNonce: flow.nonce,
    })).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('rejects a code used twice and revokes the tokens issued with it', async () => {
    const user = await createUser(server.services);
    const flow = await authorize(rp, createBrowser(), { email: user.email, password, consent: true });
    const checks = { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce };
    const tokens = await oidc.authorizationCodeGrant(rp, flow.callbackUrl, checks);
    await expect(oidc.authorizationCodeGrant(rp, flow.callbackUrl, checks)).rejects.toMatchObject({ error: 'invalid_grant' });
    const introspection = await oidc.tokenIntrospection(rp, tokens.access_token);
    expect(introspection.active).toBe(false);
  });
});
