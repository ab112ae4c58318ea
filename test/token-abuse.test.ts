import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { authorize, discoverRp, redirectUri, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// Code replay (sign-in.test.ts) and refresh-token replay (tokens.test.ts) are covered where those flows live.

type App = { clientId: string; clientSecret: string; rp: oidc.Configuration };
let server: TestServer;
let appA: App;
let appB: App;

async function registerApp(): Promise<App> {
  const client = await createClient(server.services);
  return { clientId: client.clientId, clientSecret: client.clientSecret!, rp: await discoverRp(server.issuer, client.clientId, client.clientSecret!) };
}

beforeAll(async () => {
  server = await startTestServer();
  appA = await registerApp();
  appB = await registerApp();
});
afterAll(() => server.close());

const basic = (clientId: string, secret: string) => `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`;

/** A raw form POST to one of the provider's endpoints, as a client that openid-client would not let misbehave. */
async function post(path: string, params: Record<string, string>, authorization?: string) {
  const response = await fetch(`${server.issuer}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization ? { authorization } : {}) },
    body: new URLSearchParams(params),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) as Record<string, unknown> : {} };
}

/** A user signed in at `app` up to the callback: the code and its verifier, not yet redeemed. */
async function codeFor(rp: oidc.Configuration) {
  const user = await createUser(server.services);
  const flow = await authorize(rp, createBrowser(), { email: user.email, password, consent: true });
  const code = flow.callbackUrl.searchParams.get('code');
  expect(code).toBeTruthy();
  return { code: code!, codeVerifier: flow.codeVerifier };
}

const exchange = (code: { code: string; codeVerifier?: string }, extra: Record<string, string> = {}) => ({
  grant_type: 'authorization_code', code: code.code, redirect_uri: redirectUri,
  ...(code.codeVerifier ? { code_verifier: code.codeVerifier } : {}), ...extra,
});

async function tokensFor(app: App) {
  const user = await createUser(server.services);
  return (await signIn(app.rp, createBrowser(), { email: user.email, password, consent: true })).tokens;
}

describe('PKCE for a public client (RFC 9700 §2.1.1)', () => {
  let publicApp: { clientId: string; rp: oidc.Configuration };
  beforeAll(async () => {
    const client = await createClient(server.services, { isPublic: true });
    publicApp = { clientId: client.clientId, rp: await discoverRp(server.issuer, client.clientId) };
  });

  const errorAt = async (params: Record<string, string>) => {
    const url = oidc.buildAuthorizationUrl(publicApp.rp, { redirect_uri: redirectUri, scope: 'openid', ...params });
    const location = new URL((await fetch(url, { redirect: 'manual' })).headers.get('location')!, server.issuer);
    return location.searchParams.get('error');
  };

  it('starts sign-in with an S256 challenge (control) and refuses none or plain', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    expect(await errorAt({ code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' })).toBeNull();
    expect(await errorAt({})).toBe('invalid_request');
    expect(await errorAt({ code_challenge: verifier, code_challenge_method: 'plain' })).toBe('invalid_request');
  });

  it('refuses a code exchanged without its code_verifier, which stays redeemable with it', async () => {
    const code = await codeFor(publicApp.rp);
    const withoutVerifier = await post('/token', exchange({ code: code.code }, { client_id: publicApp.clientId }));
    expect(withoutVerifier).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const withVerifier = await post('/token', exchange(code, { client_id: publicApp.clientId }));
    expect(withVerifier.status).toBe(200);
    expect(withVerifier.body.access_token).toBeTruthy();
  });
});

describe('client authentication and token ownership at the token endpoint', () => {
  it('refuses a code exchange with a wrong client secret, and the code still works with the right one', async () => {
    const code = await codeFor(appA.rp);
    const wrong = await post('/token', exchange(code), basic(appA.clientId, 'a-wrong-secret-a-wrong-secret-123'));
    expect(wrong).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect((await post('/token', exchange(code), basic(appA.clientId, appA.clientSecret))).status).toBe(200);
  });

  it('refuses a refresh with a wrong client secret, and the refresh token still works with the right one', async () => {
    const tokens = await tokensFor(appA);
    const refresh = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! };
    expect(await post('/token', refresh, basic(appA.clientId, 'a-wrong-secret-a-wrong-secret-123')))
      .toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect((await post('/token', refresh, basic(appA.clientId, appA.clientSecret))).status).toBe(200);
  });

  it('refuses a code redeemed by another client, and leaves it to the client it was issued to', async () => {
    const code = await codeFor(appA.rp);
    // RFC 6749 §4.1.3: the code must have been issued to the authenticated client. oidc-provider refuses before
    // consuming it, so another client cannot burn someone else's code either.
    expect(await post('/token', exchange(code), basic(appB.clientId, appB.clientSecret)))
      .toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect((await post('/token', exchange(code), basic(appA.clientId, appA.clientSecret))).status).toBe(200);
  });

  it("refuses to refresh another client's refresh token, which keeps working for its owner", async () => {
    const tokens = await tokensFor(appA);
    const refresh = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! };
    expect(await post('/token', refresh, basic(appB.clientId, appB.clientSecret)))
      .toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect((await oidc.refreshTokenGrant(appA.rp, tokens.refresh_token!)).access_token).toBeTruthy();
  });
});

describe('revocation (RFC 7009) and introspection (RFC 7662) across clients', () => {
  it("does not let a client revoke another client's tokens", async () => {
    const tokens = await tokensFor(appA);
    for (const token of [tokens.access_token, tokens.refresh_token!]) {
      // Latchkey's revocation policy (RFC 7009 §2.1) answers a confidential client with invalid_request.
      expect(await post('/token/revocation', { token }, basic(appB.clientId, appB.clientSecret)))
        .toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    }
    expect((await oidc.tokenIntrospection(appA.rp, tokens.access_token)).active).toBe(true);
    expect((await oidc.tokenIntrospection(appA.rp, tokens.refresh_token!)).active).toBe(true);
  });

  it("does not tell a client anything about another client's token", async () => {
    const tokens = await tokensFor(appA);
    // RFC 7662 §4: the server decides who may introspect what. Latchkey answers a client only about its own tokens.
    expect(await oidc.tokenIntrospection(appB.rp, tokens.access_token)).toEqual({ active: false });
    expect(await oidc.tokenIntrospection(appB.rp, tokens.refresh_token!)).toEqual({ active: false });
    expect(await oidc.tokenIntrospection(appA.rp, tokens.access_token)).toMatchObject({ active: true, client_id: appA.clientId, sub: tokens.claims()!.sub });
  });
});
