import { createHash, randomBytes } from 'node:crypto';
import { base64url, exportJWK, SignJWT, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../examples/api/api.js';
import { createClient } from './support/fixtures.js';
import { discoverRp } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// RFC 9449 §11.1 at the example API: a DPoP proof it has accepted is refused when it comes again, within the
// window its `iat` allows (after the window, `iat` refuses it). The memory is bounded and fails closed when full.

const audience = 'https://api.example.test';
let server: TestServer;
let api: RunningApi;
let smallApi: RunningApi;
let clockMs = Date.now();
let keyPair: CryptoKeyPair;
let jwk: JWK;
let bound: string;

beforeAll(async () => {
  server = await startTestServer();
  await server.services.apis.register(audience, ['read']);
  const worker = await createClient(server.services, { grantTypes: ['client_credentials'], redirectUris: [], apis: [{ audience, scopes: ['read'] }] });
  const service = await discoverRp(server.issuer, worker.clientId, worker.clientSecret!);
  keyPair = await oidc.randomDPoPKeyPair('ES256');
  jwk = await exportJWK(keyPair.publicKey);
  bound = (await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read' }, { DPoP: oidc.getDPoPHandle(service, keyPair) })).access_token;
  api = await startApi({ issuer: server.issuer, audience, jwksCooldownSeconds: 0 });
  smallApi = await startApi({ issuer: server.issuer, audience, jwksCooldownSeconds: 0, dpopReplayCacheSize: 2, now: () => clockMs });
});
afterAll(async () => {
  await api?.close();
  await smallApi?.close();
  await server?.close();
});

function proof(url: string, jti = randomBytes(12).toString('base64url'), iatMs = Date.now()) {
  return new SignJWT({ htm: 'GET', htu: url, jti, ath: base64url.encode(createHash('sha256').update(bound).digest()), iat: Math.floor(iatMs / 1000) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
    .sign(keyPair.privateKey);
}
const call = async (target: RunningApi, dpop: string) => {
  const response = await fetch(`${target.url}/hello`, { headers: { authorization: `DPoP ${bound}`, dpop } });
  return { status: response.status, body: await response.json() as Record<string, unknown> };
};

describe('DPoP proof replay at the example API', () => {
  it('accepts a proof once and refuses it the second time', async () => {
    const once = await proof(`${api.url}/hello`);
    expect((await call(api, once)).status).toBe(200);
    expect(await call(api, once)).toMatchObject({ status: 401, body: { error: 'invalid_dpop_proof', error_description: 'the DPoP proof has been used before' } });
  });

  it('remembers nothing of a refused proof: a proof for another URI does not use up its jti', async () => {
    const jti = randomBytes(12).toString('base64url');
    expect((await call(api, await proof('http://elsewhere.example/hello', jti))).status).toBe(401);
    expect((await call(api, await proof(`${api.url}/hello`, jti))).status).toBe(200);
  });

  it('fails closed when its memory is full of proofs inside their window, and makes room as their windows end', async () => {
    clockMs = Date.now();
    const url = `${smallApi.url}/hello`;
    expect((await call(smallApi, await proof(url, undefined, clockMs))).status).toBe(200);
    expect((await call(smallApi, await proof(url, undefined, clockMs))).status).toBe(200);
    const third = await proof(url, undefined, clockMs);
    expect(await call(smallApi, third)).toMatchObject({ status: 503, body: { error: 'temporarily_unavailable' } });
    // 61 seconds on, the first two can no longer be replayed (their iat is too old), so they are forgotten.
    clockMs += 61_000;
    const later = await proof(url, undefined, clockMs);
    expect((await call(smallApi, later)).status).toBe(200);
    expect((await call(smallApi, later)).status).toBe(401);
  });
});
