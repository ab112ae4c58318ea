import { decodeJwt, decodeProtectedHeader, importJWK, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../examples/api/api.js';
import { orderForSigning, readSigningKeys } from '../src/signing-keys.js';
import { createClient } from './support/fixtures.js';
import { discoverRp } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

const audience = 'https://api.example.test';
const otherAudience = 'https://other-api.example.test';

let server: TestServer;
/** Another Latchkey, with its own keys and issuer, that knows an API with the same audience. */
let stranger: TestServer;
let api: RunningApi;
/** The same API whose clock runs one second past the lifetime of Latchkey's access tokens. */
let lateApi: RunningApi;
let service: oidc.Configuration;
let strangerService: oidc.Configuration;

/** A machine client of `latchkey`, able to get access tokens for both APIs. */
async function serviceOf(latchkey: TestServer): Promise<oidc.Configuration> {
  await latchkey.services.apis.register(audience, ['read', 'write']);
  await latchkey.services.apis.register(otherAudience, ['read']);
  const worker = await createClient(latchkey.services, {
    grantTypes: ['client_credentials'], redirectUris: [],
    apis: [{ audience, scopes: ['read', 'write'] }, { audience: otherAudience, scopes: ['read'] }],
  });
  return discoverRp(latchkey.issuer, worker.clientId, worker.clientSecret!);
}

beforeAll(async () => {
  [server, stranger] = await Promise.all([startTestServer(), startTestServer()]);
  [service, strangerService] = await Promise.all([serviceOf(server), serviceOf(stranger)]);
  const ttlMs = server.config.accessTokenTtlSeconds * 1000;
  api = await startApi({ issuer: server.issuer, audience, jwksCooldownSeconds: 0 });
  lateApi = await startApi({ issuer: server.issuer, audience, jwksCooldownSeconds: 0, now: () => Date.now() + ttlMs + 1000 });
});
afterAll(async () => {
  await api?.close();
  await lateApi?.close();
  await server?.close();
  await stranger?.close();
});

const hello = (token: string, url = api.url) => fetch(`${url}/hello`, { headers: { authorization: `Bearer ${token}` } });
const accessToken = async (options: { scope?: string; resource?: string; from?: oidc.Configuration } = {}) => {
  const tokens = await oidc.clientCredentialsGrant(options.from ?? service, { resource: options.resource ?? audience, scope: options.scope ?? 'read' });
  return tokens.access_token;
};

/** A real access token's header and claims with `changes`, signed again with Latchkey's own current key. */
async function resigned(token: string, changes: Record<string, unknown>): Promise<string> {
  const [signing] = orderForSigning(readSigningKeys(server.config.keysDir), Date.now());
  return new SignJWT({ ...decodeJwt(token), ...changes })
    .setProtectedHeader({ ...decodeProtectedHeader(token), alg: 'RS256', kid: signing.jwk.kid })
    .sign(await importJWK(signing.jwk, 'RS256'));
}

/** RFC 6750 §3.1: 401 with `error="invalid_token"` in the challenge and the body. */
async function expectInvalidToken(response: Response, description = 'the access token is invalid') {
  expect(response.status).toBe(401);
  expect(response.headers.get('www-authenticate')).toBe(`Bearer realm="${audience}", error="invalid_token", error_description="${description}"`);
  expect(await response.json()).toEqual({ error: 'invalid_token', error_description: description });
}

describe('the example API refuses tokens it must not trust (RFC 6750 §3.1)', () => {
  it('accepts a fresh token for its audience with the read scope (the baseline every refusal below differs from)', async () => {
    const token = await accessToken();
    expect((await hello(token)).status).toBe(200);
    // The re-signing helper alone changes nothing the API cares about.
    expect((await hello(await resigned(token, {}))).status).toBe(200);
  });

  it('answers 401 invalid_token "expired" for a real token once the API\'s clock is past its exp', async () => {
    const token = await accessToken();
    expect((await hello(token)).status).toBe(200);
    await expectInvalidToken(await hello(token, lateApi.url), 'the access token expired');
  });

  it('answers 401 invalid_token for a token from another Latchkey, whose keys it does not trust', async () => {
    const foreign = await accessToken({ from: strangerService });
    // A valid token where it comes from, with the audience and scope this API wants: only the issuer is wrong.
    expect(decodeJwt(foreign)).toMatchObject({ iss: stranger.issuer, aud: audience, scope: 'read' });
    await expectInvalidToken(await hello(foreign));
  });

  it('answers 401 invalid_token for a token signed with the trusted key but naming another issuer', async () => {
    const token = await accessToken();
    await expectInvalidToken(await hello(await resigned(token, { iss: stranger.issuer })));
  });

  it('answers 401 invalid_token for a token issued for another API', async () => {
    const token = await accessToken({ resource: otherAudience });
    expect(decodeJwt(token)).toMatchObject({ iss: server.issuer, aud: otherAudience, scope: 'read' });
    await expectInvalidToken(await hello(token));
    await expectInvalidToken(await hello(await resigned(await accessToken(), { aud: otherAudience })));
  });

  it('answers 403 insufficient_scope, not invalid_token, for a valid token without the read scope', async () => {
    const response = await hello(await accessToken({ scope: 'write' }));
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toBe(`Bearer realm="${audience}", error="insufficient_scope", error_description="the read scope is required", scope="read"`);
    expect(await response.json()).toMatchObject({ error: 'insufficient_scope' });
  });
});
