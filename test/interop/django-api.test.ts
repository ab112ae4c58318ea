import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { base64url, CompactSign, decodeJwt, exportJWK, FlattenedSign, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../support/fixtures.js';
import { discoverRp } from '../support/rp.js';
import { startTestServer, type TestServer } from '../support/server.js';

// Django REST Framework verifying Latchkey's access tokens with examples/django-api/latchkey_auth.py and the settings
// of docs/apps.md (django_api.py reads both): SimpleJWT checks the token, jwcrypto the DPoP proof of a bound one. The
// tokens come from a real Latchkey through openid-client (bound ones with its DPoP handle); the proofs for the
// Django API are made here with jose, correct except for the one thing each test gets wrong.

const python = '/usr/bin/python3';
const script = path.resolve('test/interop/django_api.py');
/** The API's audience and URL in docs/apps.md (`LATCHKEY_API_URL`): proofs name it, not the address Django listens at. */
const audience = 'https://api.example.com';
const otherAudience = 'https://other.example.com';

/** Debian ships Django REST Framework, SimpleJWT and jwcrypto; install them when this machine does not have them yet. */
function ensurePackages() {
  try {
    execFileSync(python, ['-c', 'import rest_framework_simplejwt, jwcrypto']);
  } catch {
    execFileSync('apt-get', ['update'], { stdio: 'ignore' });
    execFileSync('apt-get', ['install', '-y', 'python3-djangorestframework-simplejwt', 'python3-jwcrypto'], {
      stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
}

let server: TestServer;
let service: oidc.Configuration;
/** The documented configuration. */
let django: string;
const children: ChildProcess[] = [];
let keyPair: CryptoKeyPair;
let publicJwk: JWK;
let bound: string;

/** Starts django_api.py with the documented settings changed by `overrides`; its URL, or its stderr if it exits. */
function startDjango(overrides: Record<string, unknown> = {}): Promise<string> {
  const child = spawn(python, [script, server.issuer, JSON.stringify(overrides)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`django_api.py exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).once('line', (port) => resolve(`http://127.0.0.1:${port}`));
  });
}

beforeAll(async () => {
  ensurePackages();
  server = await startTestServer();
  await server.services.apis.register(audience, ['read']);
  await server.services.apis.register(otherAudience, ['read']);
  const client = await createClient(server.services, {
    grantTypes: ['client_credentials'], redirectUris: [], apis: [{ audience, scopes: ['read'] }, { audience: otherAudience, scopes: ['read'] }],
  });
  service = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
  django = await startDjango();
  keyPair = await oidc.randomDPoPKeyPair('ES256');
  publicJwk = await exportJWK(keyPair.publicKey);
  bound = await boundToken(keyPair);
}, 600_000);
afterAll(async () => {
  for (const child of children) child.kill();
  await server?.close();
});

const unboundToken = async (resource = audience) => (await oidc.clientCredentialsGrant(service, { resource, scope: 'read' })).access_token;

/** A real DPoP-bound access token: openid-client proves possession of `pair` at Latchkey's token endpoint. */
async function boundToken(pair: CryptoKeyPair): Promise<string> {
  const tokens = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read' }, { DPoP: oidc.getDPoPHandle(service, pair) });
  expect(tokens.token_type.toLowerCase()).toBe('dpop');
  return tokens.access_token;
}

const ath = (token: string) => base64url.encode(createHash('sha256').update(token).digest());
const now = () => Math.floor(Date.now() / 1000);
const claimsFor = (token: string) => ({ htm: 'GET', htu: `${audience}/hello`, jti: randomBytes(12).toString('base64url'), ath: ath(token), iat: now() });

/** A DPoP proof built with jose, correct for GET /hello and `token` unless `claims` or `header` say otherwise. */
function proof(token: string, options: { claims?: Record<string, unknown>; header?: Record<string, unknown>; key?: CryptoKey | Uint8Array; jwk?: JWK } = {}) {
  return new SignJWT({ ...claimsFor(token), ...options.claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: options.jwk ?? publicJwk, ...options.header })
    .sign(options.key ?? keyPair.privateKey);
}

/** A proof whose payload is this JSON text as it stands (JSON.stringify cannot write NaN). */
const rawProof = (payload: string) => new CompactSign(new TextEncoder().encode(payload))
  .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: publicJwk })
  .sign(keyPair.privateKey);

const hello = (headers: Record<string, string>, base = django) => fetch(`${base}/hello`, { headers });
const withDpop = (token: string, dpop: string | string[], base = django) => {
  const headers = new Headers({ authorization: `DPoP ${token}` });
  for (const value of [dpop].flat()) headers.append('dpop', value);
  return fetch(`${base}/hello`, { headers });
};

/** RFC 9449 §7.1 and RFC 6750 §3: 401 with the challenge of the scheme the request used, naming the error. */
async function expectRefused(response: Response, scheme: 'Bearer' | 'DPoP', error: string, detail: string) {
  expect(response.status).toBe(401);
  const algs = scheme === 'DPoP' ? ', algs="ES256 EdDSA"' : '';
  expect(response.headers.get('www-authenticate')).toBe(`${scheme} realm="api"${algs}, error="${error}", error_description="${detail}"`);
  expect(await response.json()).toEqual({ detail });
}

describe('Django REST Framework with SimpleJWT, configured as docs/apps.md says', () => {
  it('accepts a Latchkey JWT access token as Bearer, and refuses tampered and missing ones', async () => {
    const token = await unboundToken();
    const valid = await hello({ authorization: `Bearer ${token}` });
    expect(valid.status).toBe(200);
    expect(await valid.json()).toEqual({ sub: service.clientMetadata().client_id, scope: 'read' });
    await expectRefused(await hello({ authorization: `Bearer ${token.slice(0, -4)}AAAA` }), 'Bearer', 'invalid_token', 'the access token is invalid or expired');
    const missing = await hello({});
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="api", DPoP realm="api", algs="ES256 EdDSA"');
  });

  it('refuses a token for another audience', async () => {
    await expectRefused(await hello({ authorization: `Bearer ${await unboundToken(otherAudience)}` }), 'Bearer', 'invalid_token', 'the access token is invalid or expired');
  });

  it('refuses every Latchkey token without TOKEN_TYPE_CLAIM: None', async () => {
    const strict = await startDjango({ SIMPLE_JWT: { TOKEN_TYPE_CLAIM: 'token_type' } });
    const token = await unboundToken();
    expect((await hello({ authorization: `Bearer ${token}` })).status).toBe(200);
    await expectRefused(await hello({ authorization: `Bearer ${token}` }, strict), 'Bearer', 'invalid_token', 'the access token is invalid or expired');
  });

  it('does not start with LATCHKEY_API_URL missing, a window that is not a number, or no DPoP scheme, and says why', async () => {
    await expect(startDjango({ LATCHKEY_API_URL: null, LATCHKEY_DPOP_PROOF_WINDOW_SECONDS: '60', SIMPLE_JWT: { AUTH_HEADER_TYPES: ['Bearer'] } }))
      .rejects.toThrow(/ImproperlyConfigured: LATCHKEY_API_URL must be the http\(s\) URL clients address this API at, got None; LATCHKEY_DPOP_PROOF_WINDOW_SECONDS must be a positive whole number, got '60'; SIMPLE_JWT\["AUTH_HEADER_TYPES"\] must be \("Bearer", "DPoP"\), got \['Bearer'\]/);
  });
});

describe('Django REST Framework and DPoP-bound access tokens (RFC 9449), as docs/apps.md says', () => {
  it('accepts a bound token with a proof by its key, with ES256 and with EdDSA', async () => {
    expect(decodeJwt(bound).cnf).toEqual({ jkt: expect.any(String) });
    const response = await withDpop(bound, await proof(bound));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ sub: service.clientMetadata().client_id, scope: 'read' });
    const edPair = await oidc.randomDPoPKeyPair('EdDSA');
    const edBound = await boundToken(edPair);
    const edProof = await proof(edBound, { header: { alg: 'EdDSA' }, key: edPair.privateKey, jwk: await exportJWK(edPair.publicKey) });
    expect((await withDpop(edBound, edProof)).status).toBe(200);
  });

  it('refuses a bound token presented as a plain bearer token (RFC 9449 §7.2): a thief has no key', async () => {
    await expectRefused(await hello({ authorization: `Bearer ${bound}` }), 'Bearer', 'invalid_token',
      'the access token is sender-constrained: send it with the DPoP scheme and a DPoP proof');
  });

  it('refuses the DPoP scheme with an unbound token, and with no proof or two proofs', async () => {
    const unbound = await unboundToken();
    await expectRefused(await withDpop(unbound, await proof(unbound)), 'DPoP', 'invalid_token', 'the access token is not DPoP-bound');
    await expectRefused(await hello({ authorization: `DPoP ${bound}` }), 'DPoP', 'invalid_dpop_proof', 'a DPoP proof is required');
    const valid = await proof(bound);
    await expectRefused(await withDpop(bound, [valid, valid]), 'DPoP', 'invalid_dpop_proof', 'exactly one DPoP header is allowed');
  });

  it.each([
    ['made for the address the request reached (the Host header), not the configured URL', () => proof(bound, { claims: { htu: `${django}/hello` } }), 'the DPoP proof is for another URL'],
    ['made for another path', () => proof(bound, { claims: { htu: `${audience}/other` } }), 'the DPoP proof is for another URL'],
    ['made for POST', () => proof(bound, { claims: { htm: 'POST' } }), 'the DPoP proof is for another method'],
    // Django's clock has fractions of a second, `iat` none: a whole second of margin either side of the window.
    ['issued 62 seconds ago', () => proof(bound, { claims: { iat: now() - 62 } }), 'the DPoP proof was not issued within 60 seconds of now'],
    ['issued 62 seconds ahead', () => proof(bound, { claims: { iat: now() + 62 } }), 'the DPoP proof was not issued within 60 seconds of now'],
    ['without iat', () => proof(bound, { claims: { iat: undefined } }), 'the DPoP proof was not issued within 60 seconds of now'],
    ['with NaN for iat', () => rawProof(`{"htm":"GET","htu":"${audience}/hello","jti":"nan","ath":"${ath(bound)}","iat":NaN}`),
      'the DPoP proof was not issued within 60 seconds of now'],
    ['with an iat beyond floats', () => rawProof(`{"htm":"GET","htu":"${audience}/hello","jti":"big","ath":"${ath(bound)}","iat":1${'0'.repeat(400)}}`),
      'the DPoP proof was not issued within 60 seconds of now'],
    ['without jti', () => proof(bound, { claims: { jti: undefined } }), 'the DPoP proof has no jti'],
    ['made for another access token', async () => proof(bound, { claims: { ath: ath(await boundToken(keyPair)) } }), 'the DPoP proof is for another access token'],
    ['without ath', () => proof(bound, { claims: { ath: undefined } }), 'the DPoP proof is for another access token'],
    ['signed by another key, naming it in its header', async () => {
      const other = await generateKeyPair('ES256');
      return proof(bound, { key: other.privateKey, jwk: await exportJWK(other.publicKey) });
    }, 'the DPoP proof is signed by another key than the token is bound to'],
    ['signed by another key, naming the bound key in its header', async () => proof(bound, { key: (await generateKeyPair('ES256')).privateKey }),
      'the DPoP proof is not signed by its own key with an allowed algorithm'],
    ['with alg none', () => {
      const part = (value: object) => base64url.encode(JSON.stringify(value));
      return `${part({ alg: 'none', typ: 'dpop+jwt', jwk: publicJwk })}.${part(claimsFor(bound))}.`;
    }, 'the DPoP proof is not signed by its own key with an allowed algorithm'],
    ['signed with ES384, which Latchkey does not allow for proofs', async () => {
      const other = await generateKeyPair('ES384');
      return proof(bound, { header: { alg: 'ES384' }, key: other.privateKey, jwk: await exportJWK(other.publicKey) });
    }, 'the DPoP proof is not signed by its own key with an allowed algorithm'],
    ['with HS256 and a secret key in its header', () => {
      const secret = randomBytes(32);
      return proof(bound, { header: { alg: 'HS256' }, key: secret, jwk: { kty: 'oct', k: base64url.encode(secret) } });
    }, "the DPoP proof's jwk header is not a public key"],
    ['with HS256 keyed with the bound public key', () => proof(bound, { header: { alg: 'HS256' }, key: new TextEncoder().encode(JSON.stringify(publicJwk)) }),
      'the DPoP proof is not signed by its own key with an allowed algorithm'],
    ['with a private key in its header', async () => {
      const other = await generateKeyPair('ES256', { extractable: true });
      return proof(bound, { key: other.privateKey, jwk: await exportJWK(other.privateKey) });
    }, "the DPoP proof's jwk header is not a public key"],
    ['whose jwk header asks for a key to be generated', () => proof(bound, { jwk: { kty: 'EC', crv: 'P-256', generate: 'EC' } as JWK }),
      'the DPoP proof is not a JWT with a usable jwk header'],
    ['typed as a plain JWT', () => proof(bound, { header: { typ: 'JWT' } }), 'the DPoP proof is not typed dpop+jwt'],
    ['in JWS JSON serialization, typed in its unsigned header', async () => JSON.stringify(
      await new FlattenedSign(new TextEncoder().encode(JSON.stringify(claimsFor(bound))))
        .setProtectedHeader({ alg: 'ES256', jwk: publicJwk }).setUnprotectedHeader({ typ: 'dpop+jwt' }).sign(keyPair.privateKey),
    ), 'exactly one DPoP header is allowed'],
    ['that is no JWT', () => 'not-a-jwt', 'the DPoP proof is not a JWT with a usable jwk header'],
  ])('refuses a proof %s', async (_name, makeProof, detail) => {
    await expectRefused(await withDpop(bound, await makeProof()), 'DPoP', 'invalid_dpop_proof', detail);
  });

  it('accepts a proof issued 55 seconds ago or ahead (within the 60-second window)', async () => {
    for (const offset of [-55, 55]) expect((await withDpop(bound, await proof(bound, { claims: { iat: now() + offset } }))).status).toBe(200);
  });

  it('compares htu without query and fragment, after normalising case and default port (RFC 9449 §4.3)', async () => {
    expect((await withDpop(bound, await proof(bound, { claims: { htu: 'HTTPS://API.Example.com:443/hello?page=2#top' } }))).status).toBe(200);
    await expectRefused(await withDpop(bound, await proof(bound, { claims: { htu: 'http://api.example.com:443/hello' } })), 'DPoP', 'invalid_dpop_proof', 'the DPoP proof is for another URL');
  });

  it('refuses a proof used twice (RFC 9449 §11.1)', async () => {
    const once = await proof(bound);
    expect((await withDpop(bound, once)).status).toBe(200);
    await expectRefused(await withDpop(bound, once), 'DPoP', 'invalid_dpop_proof', 'the DPoP proof has been used before');
  });

  it('answers 503 rather than forget a proof when its replay memory is full (LATCHKEY_DPOP_REPLAY_CACHE_SIZE)', async () => {
    const small = await startDjango({ LATCHKEY_DPOP_REPLAY_CACHE_SIZE: 1 });
    const first = await proof(bound);
    expect((await withDpop(bound, first, small)).status).toBe(200);
    const full = await withDpop(bound, await proof(bound), small);
    expect(full.status).toBe(503);
    expect(full.headers.get('retry-after')).toBe('5');
    expect(await full.json()).toEqual({ detail: 'too many DPoP proofs to remember; try again shortly' });
    await expectRefused(await withDpop(bound, first, small), 'DPoP', 'invalid_dpop_proof', 'the DPoP proof has been used before');
  });
});
