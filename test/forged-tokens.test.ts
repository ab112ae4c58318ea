import {
  base64url, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, exportSPKI, generateKeyPair, importJWK,
  jwtVerify, SignJWT, UnsecuredJWT, type CryptoKey, type JWTPayload,
} from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSigningKeys } from '../src/signing-keys.js';
import { createBrowser, textOf } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, postLogoutRedirectUri, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// Forged tokens are built with jose from a genuine token obtained through the real flow, changing one thing each.
// Those "signed with the real key" use the server's own private key (read from its KEYS_DIR), so they fail only on
// the claim they change: they prove the claim check, not just the signature check.

const audience = 'https://api.example.test';
let server: TestServer;
let rp: oidc.Configuration;
let basicAuth: string;
let genuine: { accessToken: string; idToken: string; apiAccessToken: string };
let realKey: CryptoKey;
let publicPem: string;
let publicJwk: string;
let attackerKey: CryptoKey;

beforeAll(async () => {
  server = await startTestServer();
  await server.services.apis.register(audience, ['read']);
  const client = await createClient(server.services, { apis: [{ audience, scopes: ['read'] }] });
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
  basicAuth = `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`;

  const user = await createUser(server.services);
  const { tokens } = await signIn(rp, createBrowser(), { email: user.email, password, consent: true });
  const api = await signIn(rp, createBrowser(), { email: user.email, password, scope: 'openid read', resource: audience, consent: true });
  genuine = { accessToken: tokens.access_token, idToken: tokens.id_token!, apiAccessToken: api.tokens.access_token };

  const [signing] = readSigningKeys(server.config.keysDir);
  expect(decodeProtectedHeader(genuine.idToken).kid).toBe(signing.jwk.kid);
  realKey = await importJWK(signing.jwk, 'RS256') as CryptoKey;
  // What an attacker has: the published public key, as JWK JSON and as PEM.
  const jwks = await (await fetch(`${server.issuer}/.well-known/jwks.json`)).json() as { keys: { kid: string }[] };
  const published = jwks.keys.find((key) => key.kid === signing.jwk.kid)!;
  publicJwk = JSON.stringify(published);
  publicPem = await exportSPKI(await importJWK(published, 'RS256') as CryptoKey);
  ({ privateKey: attackerKey } = await generateKeyPair('RS256'));
});
afterAll(() => server.close());

const now = () => Math.floor(Date.now() / 1000);

function resign(token: string, change: (claims: JWTPayload) => JWTPayload, key: CryptoKey = realKey, kid?: string) {
  const { kid: realKid, typ } = decodeProtectedHeader(token);
  return new SignJWT(change(decodeJwt(token))).setProtectedHeader({ alg: 'RS256', kid: kid ?? realKid, typ }).sign(key);
}

const hs256 = (token: string, secret: string) =>
  new SignJWT(decodeJwt(token)).setProtectedHeader({ alg: 'HS256', kid: decodeProtectedHeader(token).kid }).sign(new TextEncoder().encode(secret));

/** Each forgery of a genuine JWT, by name. */
const forgeries: Record<string, (token: string) => Promise<string> | string> = {
  'unsecured (alg none)': (token) => new UnsecuredJWT(decodeJwt(token)).encode(),
  'HS256 keyed with the public key PEM': (token) => hs256(token, publicPem),
  'HS256 keyed with the public JWK': (token) => hs256(token, publicJwk),
  "RS256 by an attacker's key under an unknown kid": (token) => resign(token, (claims) => claims, attackerKey, 'attacker-key'),
  "RS256 by an attacker's key under the real kid": (token) => resign(token, (claims) => claims, attackerKey),
  'genuine signature over a changed sub': (token) => {
    const [header, , signature] = token.split('.');
    return `${header}.${base64url.encode(JSON.stringify({ ...decodeJwt(token), sub: 'someone-else' }))}.${signature}`;
  },
  'expired, signed with the real key': (token) => resign(token, (claims) => ({ ...claims, iat: now() - 7200, exp: now() - 3600 })),
  'not yet valid (nbf and iat ahead), signed with the real key': (token) =>
    resign(token, (claims) => ({ ...claims, iat: now() + 3600, nbf: now() + 3600, exp: now() + 7200 })),
  'another issuer, signed with the real key': (token) => resign(token, (claims) => ({ ...claims, iss: 'https://evil.example' })),
  'another audience, signed with the real key': (token) => resign(token, (claims) => ({ ...claims, aud: 'someone-elses-app' })),
  // PostgreSQL refuses text with U+0000: looking this `aud` up as a client_id once answered 500.
  'another audience with a NUL byte, signed with the real key': (token) => resign(token, (claims) => ({ ...claims, aud: 'app\u0000' })),
};
const forgeryNames = Object.keys(forgeries);

const userinfo = (token: string) => fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${token}` } });

async function expectInvalidToken(response: Response) {
  expect(response.status).toBe(401);
  expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm=".*", error="invalid_token"/);
  expect(await response.json()).toMatchObject({ error: 'invalid_token' });
}

describe('userinfo', () => {
  it('accepts the genuine opaque access token (control)', async () => {
    const response = await userinfo(genuine.accessToken);
    expect(response.status).toBe(200);
    expect((await response.json()).sub).toBe(decodeJwt(genuine.idToken).sub);
  });

  it.each(forgeryNames)('refuses a forged JWT access token: %s', async (name) => {
    await expectInvalidToken(await userinfo(await forgeries[name](genuine.apiAccessToken)));
  });

  it('refuses a genuine opaque access token with one character changed', async () => {
    const last = genuine.accessToken.at(-1) === 'A' ? 'B' : 'A';
    await expectInvalidToken(await userinfo(`${genuine.accessToken.slice(0, -1)}${last}`));
  });

  it('refuses a genuine JWT access token issued for an API', async () => {
    const jwks = createRemoteJWKSet(new URL(`${server.issuer}/.well-known/jwks.json`));
    await jwtVerify(genuine.apiAccessToken, jwks, { issuer: server.issuer, audience, typ: 'at+jwt' });
    // oidc-provider never stores JWT access tokens (only opaque ones), and userinfo looks access tokens up in the
    // store, so it finds none; were one found, userinfo refuses any access token that carries an `aud`. The API's
    // token is for the API: an app that wants userinfo asks for a token without `resource`.
    await expectInvalidToken(await userinfo(genuine.apiAccessToken));
  });
});

const introspect = async (token: string) => fetch(`${server.issuer}/token/introspection`, {
  method: 'POST',
  headers: { authorization: basicAuth, 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ token }),
});

describe('introspection by the authenticated client', () => {
  it('reports the genuine opaque access token active (control) and a changed one inactive', async () => {
    expect(await (await introspect(genuine.accessToken)).json()).toMatchObject({ active: true, sub: decodeJwt(genuine.idToken).sub });
    const changed = `${genuine.accessToken.slice(0, -1)}${genuine.accessToken.at(-1) === 'A' ? 'B' : 'A'}`;
    expect(await (await introspect(changed)).json()).toEqual({ active: false });
  });

  // oidc-provider refuses every JWT at introspection (and revocation) with 400 unsupported_token_type rather than
  // `active: false`, the genuine API token included: JWT access tokens are self-contained, APIs verify them
  // against the JWKS, and introspection only knows the opaque tokens it stores.
  it.each([...forgeryNames, 'genuine JWT access token for an API'])('refuses a JWT as unsupported_token_type: %s', async (name) => {
    const token = forgeries[name] ? await forgeries[name](genuine.apiAccessToken) : genuine.apiAccessToken;
    const response = await introspect(token);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'unsupported_token_type' });
  });
});

// Without client_id, as an attacker would send it: the hint alone must name and convince the client.
const endSession = (idTokenHint: string) => fetch(
  `${server.issuer}/session/end?${new URLSearchParams({ id_token_hint: idTokenHint, post_logout_redirect_uri: postLogoutRedirectUri })}`,
  { redirect: 'manual', headers: { accept: 'text/html' } },
);

describe('id_token_hint at the end_session endpoint', () => {
  it.each([
    ['the genuine ID token', () => genuine.idToken],
    ['its claims signed again with the real key', () => resign(genuine.idToken, (claims) => claims)],
    // RP-Initiated Logout 1.0 §2: the OP SHOULD accept an expired ID token as a hint; oidc-provider ignores `exp`.
    ['an expired ID token signed with the real key', () => forgeries['expired, signed with the real key'](genuine.idToken)],
  ])('accepts %s (control)', async (_name, hint) => {
    const response = await endSession(await hint());
    expect(response.status).toBe(200);
    expect(response.headers.get('location')).toBeNull();
    expect(await response.text()).toContain('/session/end/confirm');
  });

  it.each(forgeryNames.filter((name) => name !== 'expired, signed with the real key'))('refuses a forged hint: %s', async (name) => {
    const response = await endSession(await forgeries[name](genuine.idToken));
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await response.text();
    // An `aud` naming no registered client is invalid_client; every other forgery fails validation.
    expect(textOf(html, 'p.detail code')).toBe(name.startsWith('another audience') ? 'invalid_client' : 'invalid_request');
    if (!name.startsWith('another audience')) expect(textOf(html, '.description')).toBe('could not validate id_token_hint');
  });
});
