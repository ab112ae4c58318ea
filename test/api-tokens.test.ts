import { calculateJwkThumbprint, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rotateSigningKey } from '../src/signing-keys.js';
import { createBrowser } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

const audience = 'https://api.example.test';
let server: TestServer;
let service: oidc.Configuration;

beforeAll(async () => {
  server = await startTestServer();
  await server.services.apis.register(audience, ['read', 'write']);
  const client = await createClient(server.services, { grantTypes: ['client_credentials'], redirectUris: [], apis: [{ audience, scopes: ['read', 'write'] }] });
  service = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(() => server.close());

function verifyWithJwks(token: string) {
  // A fresh key set each time, as a resource server would have after a restart.
  const jwks = createRemoteJWKSet(new URL(`${server.issuer}/.well-known/jwks.json`));
  return jwtVerify(token, jwks, { issuer: server.issuer, audience, typ: 'at+jwt', algorithms: ['RS256'] });
}

describe('JWT access tokens for registered APIs (RFC 9068)', () => {
  it('issues a client_credentials token that verifies offline through /.well-known/jwks.json', async () => {
    const tokens = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read' });
    const { payload, protectedHeader } = await verifyWithJwks(tokens.access_token);
    expect(protectedHeader).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
    expect(payload).toMatchObject({
      iss: server.issuer, aud: audience, client_id: service.clientMetadata().client_id,
      sub: service.clientMetadata().client_id, scope: 'read',
    });
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(payload.jti).toBeTruthy();
  });

  it('publishes keys whose kid is the RFC 7638 thumbprint', async () => {
    const jwks = await (await fetch(`${server.issuer}/.well-known/jwks.json`)).json() as { keys: Record<string, string>[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const key of jwks.keys) {
      expect(key.kid).toBe(await calculateJwkThumbprint(key as never, 'sha256'));
      expect(key.d).toBeUndefined();
      expect(key.alg).toBe('RS256');
    }
  });

  it('refuses an unregistered resource with invalid_target', async () => {
    await expect(oidc.clientCredentialsGrant(service, { resource: 'https://unknown.example.test' }))
      .rejects.toMatchObject({ error: 'invalid_target' });
  });

  it('drops scopes the API does not define', async () => {
    const tokens = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read admin' });
    const { payload } = await verifyWithJwks(tokens.access_token);
    expect(payload.scope).toBe('read');
  });

  it('refuses client_credentials with a wrong secret', async () => {
    const wrong = await discoverRp(server.issuer, service.clientMetadata().client_id, 'not-the-secret-not-the-secret-123');
    await expect(oidc.clientCredentialsGrant(wrong, { resource: audience })).rejects.toMatchObject({
      status: 401,
      cause: [expect.objectContaining({ parameters: expect.objectContaining({ error: 'invalid_client' }) })],
    });
  });

  it('gives a signed-in user a JWT for the API they asked for at authorization', async () => {
    const client = await createClient(server.services, { apis: [{ audience, scopes: ['read'] }] });
    const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const user = await createUser(server.services);
    const { tokens } = await signIn(rp, createBrowser(), {
      email: user.email, password, scope: 'openid email read', resource: audience, consent: true,
    });
    const { payload } = await verifyWithJwks(tokens.access_token);
    expect(payload).toMatchObject({ sub: user.id, aud: audience, client_id: client.clientId, scope: 'read' });
    // The refreshed access token is a JWT for the same API.
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    expect((await verifyWithJwks(refreshed.access_token)).payload.sub).toBe(user.id);
  });

  it('puts the email into the access token when the user granted the email scope, also after a refresh', async () => {
    const client = await createClient(server.services, { apis: [{ audience, scopes: ['read'] }] });
    const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const user = await createUser(server.services, { email: 'Mary.Somerville@Example.com' });
    const { tokens } = await signIn(rp, createBrowser(), {
      email: user.email, password, scope: 'openid email read', resource: audience, consent: true,
    });
    expect((await verifyWithJwks(tokens.access_token)).payload.email).toBe('mary.somerville@example.com');
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    expect((await verifyWithJwks(refreshed.access_token)).payload.email).toBe('mary.somerville@example.com');
  });

  it('leaves the email out when the email scope was not granted, and out of client_credentials tokens', async () => {
    const client = await createClient(server.services, { apis: [{ audience, scopes: ['read'] }] });
    const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const user = await createUser(server.services);
    const { tokens } = await signIn(rp, createBrowser(), {
      email: user.email, password, scope: 'openid profile read', resource: audience, consent: true,
    });
    const { payload } = await verifyWithJwks(tokens.access_token);
    expect(payload.sub).toBe(user.id);
    expect(payload).not.toHaveProperty('email');
    const serviceTokens = await oidc.clientCredentialsGrant(service, { resource: audience });
    expect((await verifyWithJwks(serviceTokens.access_token)).payload).not.toHaveProperty('email');
  });
});

describe('the access token format follows `resource`', () => {
  it('issues an opaque access token that works at userinfo without a resource, and a JWT for the API with one', async () => {
    const client = await createClient(server.services, { apis: [{ audience, scopes: ['read'] }] });
    const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const user = await createUser(server.services);

    // No resource: a reference token, meaningless outside Latchkey, that userinfo looks up in the store.
    const plain = await signIn(rp, createBrowser(), { email: user.email, password, scope: 'openid email', consent: true });
    expect(plain.tokens.access_token).not.toContain('.');
    expect(() => decodeJwt(plain.tokens.access_token)).toThrow();
    expect(await oidc.fetchUserInfo(rp, plain.tokens.access_token, user.id)).toMatchObject({ sub: user.id, email: user.email });

    // The same client and user with resource=<API> (RFC 8707): an RFC 9068 JWT the API verifies offline.
    const forApi = await signIn(rp, createBrowser(), { email: user.email, password, scope: 'openid email read', resource: audience, consent: true });
    expect(decodeProtectedHeader(forApi.tokens.access_token)).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
    const { payload } = await verifyWithJwks(forApi.tokens.access_token);
    expect(payload).toMatchObject({ sub: user.id, aud: audience, client_id: client.clientId, scope: 'read' });
  });
});

describe('signing key rotation', () => {
  it('signs new tokens with the new key while tokens signed with the old one keep verifying', async () => {
    const before = await oidc.clientCredentialsGrant(service, { resource: audience });
    const oldKid = decodeProtectedHeader(before.access_token).kid;

    const rotated = await rotateSigningKey(server.config.keysDir);
    expect(await server.reloadSigningKeys()).toBe(true);

    const after = await oidc.clientCredentialsGrant(service, { resource: audience });
    expect(decodeProtectedHeader(after.access_token).kid).toBe(rotated.jwk.kid);
    expect(rotated.jwk.kid).not.toBe(oldKid);
    await verifyWithJwks(before.access_token);
    await verifyWithJwks(after.access_token);

    const jwks = await (await fetch(`${server.issuer}/.well-known/jwks.json`)).json() as { keys: { kid: string }[] };
    expect(jwks.keys.map((key) => key.kid)).toEqual([rotated.jwk.kid, oldKid]);
  });

  it('does not rebuild the provider when no key changed', async () => {
    expect(await server.reloadSigningKeys()).toBe(false);
  });
});
