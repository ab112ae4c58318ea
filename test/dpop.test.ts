import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { authorize, discoverRp, redirectUri } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// A single-page app is a public client that keeps its tokens in the browser. With --require-dpop
// (dpop_bound_access_tokens, RFC 9449 §5.2) every token it gets is bound to a key the page cannot export, and its
// refresh token too (public clients, §5): a stolen token is useless elsewhere. --web-origin lets the app's own
// origin, and no other, read the token, userinfo and revocation endpoints' answers (CORS).

const audience = 'https://api.example.test';
const appOrigin = 'https://spa.example.com';
let server: TestServer;
let email: string;
let spaClientId: string;

beforeAll(async () => {
  server = await startTestServer();
  await server.services.apis.register(audience, ['read']);
  email = (await createUser(server.services)).email;
  spaClientId = (await createClient(server.services, {
    isPublic: true, requireDpop: true, webOrigins: [appOrigin], skipConsent: true, apis: [{ audience, scopes: ['read'] }],
  })).clientId;
});
afterAll(() => server?.close());

async function codeFor(rp: oidc.Configuration) {
  const flow = await authorize(rp, createBrowser(), { email, password, scope: 'openid offline_access read', prompt: 'consent', resource: audience });
  expect(flow.page.url.startsWith(redirectUri), flow.page.html.slice(0, 300)).toBe(true);
  return flow;
}

const redeem = (rp: oidc.Configuration, flow: Awaited<ReturnType<typeof codeFor>>, options?: { DPoP: oidc.DPoPHandle }) =>
  oidc.authorizationCodeGrant(rp, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce }, undefined, options);

async function errorOf(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    return error as oidc.ResponseBodyError;
  }
  throw new Error('expected the request to be refused');
}

describe('DPoP for single-page apps', () => {
  it('refuses a --require-dpop client a token without a proof', async () => {
    const rp = await discoverRp(server.issuer, spaClientId);
    const error = await errorOf(redeem(rp, await codeFor(rp)));
    expect(error).toMatchObject({ error: 'invalid_grant' });
  });

  it('binds the access token and the refresh token to the key; refresh needs the same key', async () => {
    const rp = await discoverRp(server.issuer, spaClientId);
    const key = await oidc.randomDPoPKeyPair();
    const DPoP = oidc.getDPoPHandle(rp, key);
    const tokens = await redeem(rp, await codeFor(rp), { DPoP });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    const jkt = (decodeJwt(tokens.access_token).cnf as { jkt: string }).jkt;
    expect(jkt).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const refreshToken = tokens.refresh_token!;

    // Without a proof, and with a proof by another key, the refresh token is refused and stays usable.
    expect(await errorOf(oidc.refreshTokenGrant(rp, refreshToken, { resource: audience }))).toMatchObject({ error: 'invalid_grant' });
    const thief = oidc.getDPoPHandle(rp, await oidc.randomDPoPKeyPair());
    expect(await errorOf(oidc.refreshTokenGrant(rp, refreshToken, { resource: audience }, { DPoP: thief }))).toMatchObject({ error: 'invalid_grant' });

    const refreshed = await oidc.refreshTokenGrant(rp, refreshToken, { resource: audience }, { DPoP });
    expect((decodeJwt(refreshed.access_token).cnf as { jkt: string }).jkt).toBe(jkt);
  });
});

describe('CORS for a client\'s registered web origins', () => {
  async function preflightAndPost(path: string, origin: string, body: Record<string, string>) {
    const preflight = await fetch(`${server.issuer}${path}`, {
      method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'dpop' },
    });
    const response = await fetch(`${server.issuer}${path}`, {
      method: 'POST', headers: { origin, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body),
    });
    const text = await response.text();
    return { preflight, response, allowed: response.headers.get('access-control-allow-origin'), body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  }

  it('lets the registered origin read the token and revocation endpoints\' answers', async () => {
    const token = await preflightAndPost('/token', appOrigin, { grant_type: 'refresh_token', refresh_token: 'unknown', client_id: spaClientId });
    expect(token.preflight.status).toBe(204);
    expect(token.allowed).toBe(appOrigin);
    expect(token.body).toMatchObject({ error: 'invalid_grant' });
    const revocation = await preflightAndPost('/token/revocation', appOrigin, { token: 'unknown', client_id: spaClientId });
    expect(revocation.allowed).toBe(appOrigin);
  });

  it('refuses any other origin, also the origin of the client\'s own redirect URI, with no Allow-Origin', async () => {
    for (const origin of ['https://evil.example', new URL(redirectUri).origin, 'null', `${appOrigin}.evil.example`]) {
      for (const path of ['/token', '/token/revocation']) {
        const answer = await preflightAndPost(path, origin, { grant_type: 'refresh_token', refresh_token: 'unknown', token: 'unknown', client_id: spaClientId });
        expect(answer.allowed).toBeNull();
        expect(answer.body).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('not allowed') });
      }
    }
  });

  it('applies the access token\'s client\'s origins at userinfo', async () => {
    const rp = await discoverRp(server.issuer, spaClientId);
    const key = await oidc.randomDPoPKeyPair();
    const flow = await authorize(rp, createBrowser(), { email, password, scope: 'openid email', prompt: 'consent' });
    const tokens = await redeem(rp, flow, { DPoP: oidc.getDPoPHandle(rp, key) });
    const call = async (origin: string) => {
      const handle = oidc.getDPoPHandle(rp, key);
      const response = await oidc.fetchProtectedResource(rp, tokens.access_token, new URL(`${server.issuer}/me`), 'GET', undefined, new Headers({ origin }), { DPoP: handle })
        .catch((error: unknown) => {
          if (error instanceof oidc.WWWAuthenticateChallengeError) return error.response;
          throw error;
        });
      return { status: response.status, allowed: response.headers.get('access-control-allow-origin') };
    };
    expect(await call(appOrigin)).toEqual({ status: 200, allowed: appOrigin });
    const refused = await call('https://evil.example');
    expect(refused.allowed).toBeNull();
    expect(refused.status).toBe(400);
  });
});
