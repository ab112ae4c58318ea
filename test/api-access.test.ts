import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NewClient } from '../src/registry/clients.js';
import { createBrowser, textOf } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { authorize, discoverRp, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// RFC 9700 §2.3, RFC 8707 §2, RFC 6749 §3.3: a client gets tokens only for the APIs, and the scopes of them, it
// was given (`latchkey clients create|update --api`); everything else is invalid_target or invalid_scope.
const orders = 'https://orders.example.test';
const billing = 'https://billing.example.test';
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
  await server.services.apis.register(orders, ['read', 'write', 'admin']);
  await server.services.apis.register(billing, ['read', 'charge']);
});
afterAll(() => server.close());

const basic = (clientId: string, secret: string) => `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`;

async function post(path: string, params: Record<string, string | string[]>, authorization: string) {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) for (const one of [value].flat()) body.append(name, one);
  const response = await fetch(`${server.issuer}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
    body,
  });
  return { status: response.status, body: await response.json() as Record<string, string> };
}

async function worker(overrides: Partial<NewClient> = {}) {
  const client = await createClient(server.services, { grantTypes: ['client_credentials'], redirectUris: [], ...overrides });
  const auth = basic(client.clientId, client.clientSecret!);
  return { client, token: (params: Record<string, string | string[]>) => post('/token', { grant_type: 'client_credentials', ...params }, auth) };
}

async function app(overrides: Partial<NewClient> = {}) {
  const client = await createClient(server.services, overrides);
  return { client, rp: await discoverRp(server.issuer, client.clientId, client.clientSecret!), auth: basic(client.clientId, client.clientSecret!) };
}

async function replaysRecorded(): Promise<number> {
  await server.services.audit.settled();
  return (await server.services.auditEvents.list({ limit: 10_000 })).filter((event) => event.type === 'token.replay_detected').length;
}

describe('client_credentials', () => {
  it('refuses an API the client was not given, exactly like an unregistered one (invalid_target)', async () => {
    const { token } = await worker({ apis: [{ audience: billing, scopes: ['read'] }] });
    const refused = await token({ resource: orders, scope: 'admin' });
    const unknown = await token({ resource: 'https://unknown.example.test', scope: 'admin' });
    expect(refused).toEqual({ status: 400, body: { error: 'invalid_target', error_description: `resource ${orders} is not an API this client may use` } });
    expect(unknown.body.error).toBe('invalid_target');
    // A client given no API at all (every client right after the upgrade) gets none.
    expect((await (await worker()).token({ resource: billing, scope: 'read' })).body.error).toBe('invalid_target');
  });

  it('refuses a scope of the API the client was not given (invalid_scope) instead of issuing it', async () => {
    const { token } = await worker({ apis: [{ audience: orders, scopes: ['read'] }] });
    const response = await token({ resource: orders, scope: 'read admin' });
    expect(response).toEqual({ status: 400, body: { error: 'invalid_scope', error_description: `this client may not ask for admin at ${orders}`, scope: 'admin' } });
  });

  it('issues what was given, with the scope claim', async () => {
    const { client, token } = await worker({ apis: [{ audience: orders, scopes: ['read', 'write'] }] });
    const response = await token({ resource: orders, scope: 'read write' });
    expect(response.status).toBe(200);
    expect(response.body.scope).toBe('read write');
    expect(decodeJwt(response.body.access_token)).toMatchObject({ aud: orders, sub: client.clientId, scope: 'read write' });
    // Without a scope parameter: the token still carries `scope` (RFC 9068 §2.2.3), empty.
    expect(decodeJwt((await token({ resource: orders })).body.access_token).scope).toBe('');
  });

  it('gives an audience-only client a token for the API that carries an empty scope and none of its scopes', async () => {
    const { token } = await worker({ apis: [{ audience: orders, scopes: [] }] });
    const response = await token({ resource: orders });
    expect(response.status).toBe(200);
    expect(decodeJwt(response.body.access_token)).toMatchObject({ aud: orders, scope: '' });
    expect((await token({ resource: orders, scope: 'read' })).body.error).toBe('invalid_scope');
  });

  it('answers each of many simultaneous requests from clients with different APIs by its own client', async () => {
    // On SQLite the lookups of one event-loop turn share a statement: each answer must still be its client's.
    const allowed = await worker({ apis: [{ audience: orders, scopes: ['read'] }] });
    const refused = await worker({ apis: [{ audience: billing, scopes: ['read'] }] });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? allowed : refused).token({ resource: orders, scope: 'read' })));
    expect(answers.map((answer) => answer.status)).toEqual(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 200 : 400)));
  });

  it('follows `clients update`: a new API works at once, a removed one is refused at once', async () => {
    const { client, token } = await worker({ apis: [{ audience: billing, scopes: ['read'] }] });
    await server.services.clients.update(client.clientId, { apis: [{ audience: orders, scopes: ['read'] }] });
    expect((await token({ resource: orders, scope: 'read' })).status).toBe(200);
    expect((await token({ resource: billing, scope: 'read' })).body.error).toBe('invalid_target');
    await server.services.clients.update(client.clientId, { apis: [] });
    expect((await token({ resource: orders, scope: 'read' })).body.error).toBe('invalid_target');
  });
});

describe('sign-in with resource', () => {
  it('gives a first-party app only the scopes it was given, and refuses the others', async () => {
    const { rp } = await app({ skipConsent: true, apis: [{ audience: orders, scopes: ['read'] }] });
    const user = await createUser(server.services);
    const browser = createBrowser();
    const { tokens } = await signIn(rp, browser, { email: user.email, password, scope: 'openid read', resource: orders });
    expect(decodeJwt(tokens.access_token)).toMatchObject({ aud: orders, sub: user.id, scope: 'read' });
    const refused = await authorize(rp, browser, { email: user.email, password, scope: 'openid read write admin', resource: orders });
    expect(Object.fromEntries(refused.callbackUrl.searchParams)).toMatchObject({
      error: 'invalid_scope', error_description: `this client may not ask for write admin at ${orders}`,
    });
  });

  it('refuses an API the app was not given at the authorization endpoint', async () => {
    const { rp } = await app({ skipConsent: true, apis: [{ audience: orders, scopes: ['read'] }] });
    const user = await createUser(server.services);
    const refused = await authorize(rp, createBrowser(), { email: user.email, password, scope: 'openid read', resource: billing });
    expect(refused.callbackUrl.searchParams.get('error')).toBe('invalid_target');
  });

  it('refuses an API asked without any of its scopes, which no consent page would name', async () => {
    const { rp } = await app({ apis: [{ audience: orders, scopes: ['read'] }] });
    const user = await createUser(server.services);
    const refused = await authorize(rp, createBrowser(), { email: user.email, password, scope: 'openid email', resource: orders });
    expect(Object.fromEntries(refused.callbackUrl.searchParams)).toMatchObject({
      error: 'invalid_scope', error_description: `ask for at least one scope of ${orders} this client may use (read)`,
    });
  });

  it('names each API and the scopes asked of it on the consent page, also those granted before', async () => {
    const { rp } = await app({ name: 'Shop', apis: [{ audience: orders, scopes: ['read', 'write'] }, { audience: billing, scopes: ['read'] }] });
    const user = await createUser(server.services);
    const browser = createBrowser();
    await signIn(rp, browser, { email: user.email, password, scope: 'openid read', resource: orders, consent: true });
    // The second time the app also wants email and write: the page names orders with read (granted before) and write.
    const flow = await authorize(rp, browser, { email: user.email, password, scope: 'openid email read write', resource: orders });
    expect(textOf(flow.page.html, 'h1')).toBe('Allow access?');
    expect(textOf(flow.page.html, 'p.api')).toBe(`Use ${orders} with permission to:`);
    expect(flow.page.html).toMatch(/<li>write<\/li><li>read<\/li>|<li>read<\/li><li>write<\/li>/);
    expect(flow.page.html).toContain('See your email address');
    expect(flow.page.html).not.toContain(billing);
  });
});

describe('refresh with a resource the token cannot have (the token must survive a client mistake)', () => {
  async function signedIn() {
    const { client, rp, auth } = await app({ skipConsent: true, apis: [{ audience: orders, scopes: ['read'] }] });
    const user = await createUser(server.services);
    const { tokens } = await signIn(rp, createBrowser(), { email: user.email, password, scope: 'openid read', resource: orders });
    return { client, auth, refreshToken: tokens.refresh_token! };
  }

  it.each([
    ['an unregistered API', 'https://unknown.example.test'],
    ['a registered API that was not granted', billing],
    ['a malformed resource', 'not a uri'],
    ['a resource with a fragment', `${orders}#x`],
    ['two resources', [orders, billing]],
  ])('answers invalid_target for %s and leaves the refresh token usable, with no replay recorded', async (_name, resource) => {
    const { auth, refreshToken } = await signedIn();
    const replaysBefore = await replaysRecorded();
    const refused = await post('/token', { grant_type: 'refresh_token', refresh_token: refreshToken, resource }, auth);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_target');
    const retried = await post('/token', { grant_type: 'refresh_token', refresh_token: refreshToken, resource: orders }, auth);
    expect(retried.status).toBe(200);
    expect(decodeJwt(retried.body.access_token)).toMatchObject({ aud: orders, scope: 'read' });
    expect(await replaysRecorded()).toBe(replaysBefore);
  });

  it('refuses a refresh for an API the client lost without spending the token; it works again once given back', async () => {
    const { client, auth, refreshToken } = await signedIn();
    await server.services.clients.update(client.clientId, { apis: [] });
    const refused = await post('/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, auth);
    expect(refused.body.error).toBe('invalid_target');
    await server.services.clients.update(client.clientId, { apis: [{ audience: orders, scopes: ['read'] }] });
    const retried = await post('/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, auth);
    expect(retried.status).toBe(200);
    expect(decodeJwt(retried.body.access_token)).toMatchObject({ aud: orders, scope: 'read' });
  });

  it('narrows a refreshed token to the scopes the client still has', async () => {
    const { client, rp, auth } = await app({ skipConsent: true, apis: [{ audience: orders, scopes: ['read', 'write'] }] });
    const user = await createUser(server.services);
    const { tokens } = await signIn(rp, createBrowser(), { email: user.email, password, scope: 'openid read write', resource: orders });
    expect(decodeJwt(tokens.access_token).scope).toBe('read write');
    await server.services.clients.update(client.clientId, { apis: [{ audience: orders, scopes: ['read'] }] });
    const refreshed = await post('/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, auth);
    expect(decodeJwt(refreshed.body.access_token).scope).toBe('read');
  });
});

describe('ID token claims (OpenID Connect Core §5.4)', () => {
  it('puts profile and email claims in the ID token only when the access token is for an API and cannot reach userinfo', async () => {
    const { rp } = await app({ skipConsent: true, apis: [{ audience: orders, scopes: ['read'] }] });
    const user = await createUser(server.services);
    const browser = createBrowser();
    const forUserinfo = await signIn(rp, browser, { email: user.email, password, scope: 'openid email profile' });
    expect(Object.keys(forUserinfo.tokens.claims()!)).not.toContain('email');
    expect(await oidc.fetchUserInfo(rp, forUserinfo.tokens.access_token, user.id)).toMatchObject({ email: user.email, given_name: 'Ada' });

    const forApi = await signIn(rp, browser, { email: user.email, password, scope: 'openid email profile read', resource: orders });
    expect(forApi.tokens.claims()).toMatchObject({ sub: user.id, email: user.email, given_name: 'Ada', family_name: 'Lovelace' });
    await expect(oidc.fetchUserInfo(rp, forApi.tokens.access_token, user.id)).rejects.toMatchObject({ status: 401 });
  });
});
