import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { base64url, decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../examples/api/api.js';
import { createClient } from './support/fixtures.js';
import { discoverRp } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// RFC 9449 at the example API: a DPoP-bound access token from Latchkey (obtained by openid-client with a DPoP key)
// is accepted only with the DPoP scheme and a valid proof by the bound key, never as a bearer token.

const audience = 'https://api.example.test';
const publicUrl = 'https://api.example.test';

let server: TestServer;
let api: RunningApi;
/** The same API configured with its public URL (as behind a proxy): proofs must name that URL. */
let proxiedApi: RunningApi;
let service: oidc.Configuration;
let keyPair: CryptoKeyPair;
let publicJwk: JWK;
let bound: string;

beforeAll(async () => {
  server = await startTestServer();
  await server.services.apis.register(audience, ['read']);
  const worker = await createClient(server.services, { grantTypes: ['client_credentials'], redirectUris: [], apis: [{ audience, scopes: ['read'] }] });
  service = await discoverRp(server.issuer, worker.clientId, worker.clientSecret!);
  api = await startApi({ issuer: server.issuer, audience, jwksCooldownSeconds: 0 });
  proxiedApi = await startApi({ issuer: server.issuer, audience, jwksCooldownSeconds: 0, url: publicUrl });
  keyPair = await oidc.randomDPoPKeyPair('ES256');
  publicJwk = await exportJWK(keyPair.publicKey);
  bound = await boundToken(keyPair);
});
afterAll(async () => {
  await api?.close();
  await proxiedApi?.close();
  await server?.close();
});

/** A real DPoP-bound access token: openid-client proves possession of `pair` at Latchkey's token endpoint. */
async function boundToken(pair: CryptoKeyPair): Promise<string> {
  const tokens = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read' }, { DPoP: oidc.getDPoPHandle(service, pair) });
  expect(tokens.token_type.toLowerCase()).toBe('dpop');
  return tokens.access_token;
}

const ath = (token: string) => base64url.encode(createHash('sha256').update(token).digest());

/** A DPoP proof built with jose, correct for GET `url` and `token` unless `claims` or `header` say otherwise. */
function proof(url: string, token: string, options: { claims?: Record<string, unknown>; header?: Record<string, unknown>; key?: CryptoKey; jwk?: JWK } = {}) {
  return new SignJWT({ htm: 'GET', htu: url, jti: randomBytes(12).toString('base64url'), ath: ath(token), iat: Math.floor(Date.now() / 1000), ...options.claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: options.jwk ?? publicJwk, ...options.header })
    .sign(options.key ?? keyPair.privateKey);
}

const hello = (headers: Record<string, string>, base = api.url) => fetch(`${base}/hello`, { headers });
const withDpop = async (token: string, dpop: string | string[], base = api.url) => {
  const headers = new Headers({ authorization: `DPoP ${token}` });
  for (const value of [dpop].flat()) headers.append('dpop', value);
  return fetch(`${base}/hello`, { headers });
};

async function expectRefused(response: Response, scheme: 'Bearer' | 'DPoP', error: string, description: string) {
  expect(response.status).toBe(401);
  expect(response.headers.get('www-authenticate')).toContain(`${scheme} realm="${audience}"`);
  expect(response.headers.get('www-authenticate')).toContain(`error="${error}"`);
  expect(await response.json()).toEqual({ error, error_description: description });
}

describe('the example API and DPoP-bound access tokens (RFC 9449)', () => {
  it('accepts a bound token with a proof made by openid-client for the bound key', async () => {
    expect(decodeJwt(bound).cnf).toEqual({ jkt: expect.any(String) });
    const response = await oidc.fetchProtectedResource(service, bound, new URL(`${api.url}/hello`), 'GET', null, undefined, { DPoP: oidc.getDPoPHandle(service, keyPair) });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ scope: 'read' });
    // The jose-built proof the refusals below start from is accepted too.
    expect((await withDpop(bound, await proof(`${api.url}/hello`, bound))).status).toBe(200);
  });

  it('refuses a bound token presented as a plain bearer token (RFC 9449 §7.2): a thief has no key', async () => {
    await expectRefused(await hello({ authorization: `Bearer ${bound}` }), 'Bearer', 'invalid_token',
      'the access token is sender-constrained: send it with the DPoP scheme and a DPoP proof');
  });

  it('refuses the DPoP scheme with an unbound token, and with no proof or two proofs', async () => {
    const { access_token: unbound } = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read' });
    expect((await hello({ authorization: `Bearer ${unbound}` })).status).toBe(200);
    await expectRefused(await withDpop(unbound, await proof(`${api.url}/hello`, unbound)), 'DPoP', 'invalid_token', 'the access token is not DPoP-bound');
    await expectRefused(await hello({ authorization: `DPoP ${bound}` }), 'DPoP', 'invalid_dpop_proof', 'a DPoP proof is required');
    const valid = await proof(`${api.url}/hello`, bound);
    await expectRefused(await withDpop(bound, [valid, valid]), 'DPoP', 'invalid_dpop_proof', 'exactly one DPoP header is allowed');
  });

  it.each([
    ['signed by another key, naming it in its header', async () => {
      const other = await generateKeyPair('ES256');
      return proof(`${api.url}/hello`, bound, { key: other.privateKey, jwk: await exportJWK(other.publicKey) });
    }, 'the DPoP proof is signed by another key than the token is bound to'],
    ['signed by another key, naming the bound key in its header', async () => {
      const other = await generateKeyPair('ES256');
      return proof(`${api.url}/hello`, bound, { key: other.privateKey });
    }, 'the DPoP proof is invalid, expired or not signed by its own key'],
    ['with a private key in its header', async () => {
      const other = await generateKeyPair('ES256', { extractable: true });
      return proof(`${api.url}/hello`, bound, { key: other.privateKey, jwk: await exportJWK(other.privateKey) });
    }, 'the DPoP proof is invalid, expired or not signed by its own key'],
    ['typed as a plain JWT', () => proof(`${api.url}/hello`, bound, { header: { typ: 'JWT' } }), 'the DPoP proof is invalid, expired or not signed by its own key'],
    ['made for POST', () => proof(`${api.url}/hello`, bound, { claims: { htm: 'POST' } }), 'the DPoP proof is for another method'],
    ['made for another path', () => proof(`${api.url}/other`, bound), 'the DPoP proof is for another URI'],
    ['made for another host', () => proof('http://evil.example/hello', bound), 'the DPoP proof is for another URI'],
    ['made for another access token', async () => proof(`${api.url}/hello`, await boundToken(keyPair)), 'the DPoP proof is for another access token'],
    ['without ath', () => proof(`${api.url}/hello`, bound, { claims: { ath: undefined } }), 'the DPoP proof is for another access token'],
    ['without jti', () => proof(`${api.url}/hello`, bound, { claims: { jti: undefined } }), 'the DPoP proof has no jti'],
    ['issued 61 seconds ago', () => proof(`${api.url}/hello`, bound, { claims: { iat: Math.floor(Date.now() / 1000) - 61 } }), 'the DPoP proof is invalid, expired or not signed by its own key'],
    ['issued 61 seconds ahead', () => proof(`${api.url}/hello`, bound, { claims: { iat: Math.floor(Date.now() / 1000) + 61 } }), 'the DPoP proof is invalid, expired or not signed by its own key'],
    ['without iat', () => proof(`${api.url}/hello`, bound, { claims: { iat: undefined } }), 'the DPoP proof is invalid, expired or not signed by its own key'],
  ])('refuses a proof %s', async (_name, makeProof, description) => {
    await expectRefused(await withDpop(bound, await makeProof()), 'DPoP', 'invalid_dpop_proof', description);
  });

  it('accepts a proof issued 55 seconds ago or ahead (within the 60-second window)', async () => {
    for (const offset of [-55, 55]) {
      expect((await withDpop(bound, await proof(`${api.url}/hello`, bound, { claims: { iat: Math.floor(Date.now() / 1000) + offset } }))).status).toBe(200);
    }
  });

  it('checks htu against the URL the API is configured with, not the address the request reached', async () => {
    expect((await withDpop(bound, await proof(`${publicUrl}/hello`, bound), proxiedApi.url)).status).toBe(200);
    await expectRefused(await withDpop(bound, await proof(`${proxiedApi.url}/hello`, bound), proxiedApi.url), 'DPoP', 'invalid_dpop_proof', 'the DPoP proof is for another URI');
  });
});

type VerifyAccessToken = (request: { authorization?: string; dpop?: string; method: string; path: string }) => Promise<{ scope?: string }>;

/** The jose example of docs/apps.md as written, pointed at the test server, in a module of its own. */
async function importDocumentedExample(issuer: string, publicBaseUrl: string): Promise<VerifyAccessToken> {
  const doc = fs.readFileSync('docs/apps.md', 'utf8');
  const block = [...doc.matchAll(/```js\n([\s\S]*?)```/g)].map((match) => match[1]).find((code) => code.includes('export async function verifyAccessToken'));
  if (!block) throw new Error('docs/apps.md has no verifyAccessToken example');
  const code = block
    .replaceAll('http://localhost:3000', issuer)
    .replace("audience: 'https://api.example.com'", `audience: '${audience}'`)
    .replace("const publicUrl = 'https://api.example.com'", `const publicUrl = '${publicBaseUrl}'`);
  // Inside the repository (git-ignored), so that `jose` resolves from node_modules.
  const dir = fs.mkdtempSync(path.resolve('test-artifacts', 'readme-'));
  const file = path.join(dir, 'verify.mjs');
  fs.writeFileSync(file, code);
  try {
    return (await import(pathToFileURL(file).href)).verifyAccessToken as VerifyAccessToken;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('the jose example for APIs in docs/apps.md', () => {
  let readmeApi: http.Server;
  let url: string;
  beforeAll(async () => {
    fs.mkdirSync('test-artifacts', { recursive: true });
    let verify: VerifyAccessToken | undefined;
    // A bare HTTP server that answers 200 when the documented function accepts the request, 401 when it throws.
    readmeApi = http.createServer((req, res) => {
      verify!({ authorization: req.headers.authorization, dpop: req.headers.dpop as string | undefined, method: req.method!, path: new URL(req.url!, 'http://x').pathname })
        .then((payload) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(payload)))
        .catch(() => res.writeHead(401).end());
    });
    await new Promise<void>((resolve) => readmeApi.listen(0, resolve));
    url = `http://localhost:${(readmeApi.address() as AddressInfo).port}`;
    verify = await importDocumentedExample(server.issuer, url);
  });
  afterAll(() => new Promise<void>((resolve) => readmeApi?.close(() => resolve())));

  it('accepts a bound token with an openid-client proof and an unbound bearer token', async () => {
    const response = await oidc.fetchProtectedResource(service, bound, new URL(`${url}/hello`), 'GET', null, undefined, { DPoP: oidc.getDPoPHandle(service, keyPair) });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ scope: 'read', cnf: { jkt: expect.any(String) } });
    const { access_token: unbound } = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read' });
    expect((await hello({ authorization: `Bearer ${unbound}` }, url)).status).toBe(200);
  });

  it('refuses a proof it has accepted before (RFC 9449 §11.1)', async () => {
    const once = await proof(`${url}/hello`, bound);
    expect((await withDpop(bound, once, url)).status).toBe(200);
    expect((await withDpop(bound, once, url)).status).toBe(401);
  });

  it('refuses a bound token as bearer, a proof by another key, for another method, URI or token, and no proof', async () => {
    const other = await generateKeyPair('ES256');
    const refused = [
      await hello({ authorization: `Bearer ${bound}` }, url),
      await hello({ authorization: `DPoP ${bound}` }, url),
      await withDpop(bound, await proof(`${url}/hello`, bound, { key: other.privateKey, jwk: await exportJWK(other.publicKey) }), url),
      await withDpop(bound, await proof(`${url}/hello`, bound, { claims: { htm: 'POST' } }), url),
      await withDpop(bound, await proof(`${url}/other`, bound), url),
      await withDpop(bound, await proof(`${url}/hello`, await boundToken(keyPair)), url),
      await withDpop(bound, await proof(`${url}/hello`, bound, { claims: { iat: Math.floor(Date.now() / 1000) - 61 } }), url),
    ];
    expect(refused.map((response) => response.status)).toEqual(refused.map(() => 401));
  });
});
