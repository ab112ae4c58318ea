import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/server.js';

// Confidential clients are registered for client_secret_basic; oidc-provider also lets them send the same secret
// as client_secret_post (lib/shared/client_auth.js treats the two as one family). Latchkey keeps that on purpose:
// the same secret travels in another place with the same strength, and libraries that default to either one work.
// What RFC 6749 §2.3.1 forbids, more than one method in one request, is refused.

const audience = 'https://api.example.test';
let server: TestServer;
let client: { clientId: string; clientSecret: string };
let publicClientId: string;

beforeAll(async () => {
  server = await startTestServer();
  await server.services.apis.register(audience, ['read']);
  const registered = await createClient(server.services, { grantTypes: ['client_credentials'], redirectUris: [], apis: [{ audience, scopes: ['read'] }] });
  client = { clientId: registered.clientId, clientSecret: registered.clientSecret! };
  publicClientId = (await createClient(server.services, { isPublic: true })).clientId;
});
afterAll(() => server?.close());

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

function token(fields: Record<string, string>, authorization?: string) {
  return fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization ? { authorization } : {}) },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: audience, scope: 'read', ...fields }),
  });
}

describe('client authentication at the token endpoint', () => {
  it('registers confidential clients for client_secret_basic and advertises both secret methods', async () => {
    const discovery = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json() as Record<string, unknown>;
    expect(discovery.token_endpoint_auth_methods_supported).toEqual(['client_secret_basic', 'client_secret_post', 'none']);
    expect((await server.services.clients.find(client.clientId))?.tokenEndpointAuthMethod).toBe('client_secret_basic');
  });

  it('accepts the secret in the Authorization header (client_secret_basic)', async () => {
    const response = await token({}, basic(client.clientId, client.clientSecret));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ token_type: 'Bearer' });
  });

  it('accepts the same secret in the body (client_secret_post), deliberately', async () => {
    const response = await token({ client_id: client.clientId, client_secret: client.clientSecret });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ token_type: 'Bearer' });
  });

  it('refuses a wrong secret either way', async () => {
    for (const response of [await token({}, basic(client.clientId, 'wrong')), await token({ client_id: client.clientId, client_secret: 'wrong' })]) {
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: 'invalid_client' });
    }
  });

  it('refuses two methods in one request (RFC 6749 §2.3.1), even when both carry the right secret', async () => {
    const response = await token({ client_id: client.clientId, client_secret: client.clientSecret }, basic(client.clientId, client.clientSecret));
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'invalid_request', error_description: 'client authentication must only be provided using one mechanism' });
  });

  it('refuses a secret from a public client, which authenticates with none', async () => {
    const response = await token({ grant_type: 'refresh_token', refresh_token: 'x', client_id: publicClientId, client_secret: 'anything' });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: 'invalid_client' });
  });
});
