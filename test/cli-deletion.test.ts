import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser } from './support/browser.js';
import { runCliCapturing } from './support/cli.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { startLogoutReceiver, verifyLogoutToken } from './support/logout-receiver.js';
import { discoverRp, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;
let receiver: Awaited<ReturnType<typeof startLogoutReceiver>>;
let app: { clientId: string; rp: oidc.Configuration };

beforeAll(async () => {
  [server, receiver] = await Promise.all([startTestServer(), startLogoutReceiver()]);
  const client = await createClient(server.services, { backchannelLogoutUri: receiver.url });
  app = { clientId: client.clientId, rp: await discoverRp(server.issuer, client.clientId, client.clientSecret!) };
});
afterAll(async () => {
  await Promise.all([server.close(), receiver.close()]);
});

/** The CLI in-process, as an operator runs it next to the server: same database, keys and issuer. */
const cli = (...argv: string[]) => runCliCapturing(argv, { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir, ISSUER: server.issuer });

const auditTypes = async (accountId: string) => (await server.database('audit_events').select('type').where({ account_id: accountId })).map((row) => row.type as string);

describe('latchkey users delete', () => {
  it('ends the user\'s sessions and tokens with back-channel logout, deletes the user and keeps their audit events', async () => {
    const user = await createUser(server.services);
    const flow = await signIn(app.rp, createBrowser(), { email: user.email, password, scope: 'openid offline_access', prompt: 'consent', consent: true });
    const before = receiver.tokens.length;

    const result = await cli('users', 'delete', '--email', user.email.toUpperCase(), '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const output = JSON.parse(result.stdout);
    expect(output).toMatchObject({ id: user.id, email: user.email, logout: { sessionsEnded: 1, deliveries: [{ clientId: app.clientId, isDelivered: true }] } });

    const [logoutToken] = receiver.tokens.slice(before);
    expect(await verifyLogoutToken(logoutToken, server.issuer, app.clientId)).toMatchObject({ sub: user.id, sid: flow.tokens.claims()!.sid });
    await expect(oidc.refreshTokenGrant(app.rp, flow.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(Number((await server.database('oidc_payloads').where({ account_id: user.id }).count({ count: '*' }))[0].count)).toBe(0);
    expect(await server.services.accounts.findByEmail(user.email)).toBeUndefined();
    // Signing in again finds no one.
    await expect(signIn(app.rp, createBrowser(), { email: user.email, password })).rejects.toThrow(/sign-in stopped/);

    await server.services.audit.settled();
    expect(await auditTypes(user.id)).toEqual(expect.arrayContaining(['sign_in.success', 'user.deleted']));
  });

  it('says so in one line and exits non-zero for an unknown email', async () => {
    expect(await cli('users', 'delete', '--email', 'nobody@example.com')).toEqual({ code: 1, stdout: '', stderr: 'latchkey: no user with email nobody@example.com' });
    expect(await cli('users', 'delete')).toMatchObject({ code: 1, stderr: 'latchkey: --email is required' });
  });

  it('lets the same email be registered again afterwards, as a new user with a new sub', async () => {
    const user = await createUser(server.services);
    expect((await cli('users', 'delete', '--email', user.email)).code).toBe(0);
    const again = await createUser(server.services, { email: user.email });
    expect(again.id).not.toBe(user.id);
  });
});

describe('latchkey apis delete', () => {
  it('deletes an API no client is given, and says that tokens already issued stay valid until they expire', async () => {
    await server.services.apis.register('https://unused.example.com', ['read']);
    const result = await cli('apis', 'delete', '--audience', 'https://unused.example.com');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('deleted API https://unused.example.com');
    expect(result.stdout).toContain('stay valid until they expire');
    expect(await server.services.apis.find('https://unused.example.com')).toBeUndefined();
  });

  it('refuses while clients are given the API; --force takes it from them, and no new token is issued for it', async () => {
    const audience = 'https://orders.example.com';
    await server.services.apis.register(audience, ['orders:read']);
    const service = await createClient(server.services, {
      grantTypes: ['client_credentials'], redirectUris: [], postLogoutRedirectUris: [], apis: [{ audience, scopes: ['orders:read'] }],
    });
    const rp = await discoverRp(server.issuer, service.clientId, service.clientSecret!);
    const issued = await oidc.clientCredentialsGrant(rp, { resource: audience, scope: 'orders:read' });

    const refused = await cli('apis', 'delete', '--audience', audience);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toBe(`latchkey: API ${audience} is given to 1 client (${service.clientId}): take it from them (clients update --client-id ID --api …) or delete it with --force`);
    expect(await server.services.apis.find(audience)).toBeDefined();

    const forced = await cli('apis', 'delete', '--audience', audience, '--force', '--json');
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ audience, removedFrom: [service.clientId], issuedTokensStayValidUntilExpiry: true });
    expect((await server.services.clients.listApis(service.clientId)).get(service.clientId) ?? []).toEqual([]);
    await expect(oidc.clientCredentialsGrant(rp, { resource: audience, scope: 'orders:read' })).rejects.toMatchObject({ error: 'invalid_target' });
    // The token issued before is a JWT its API verifies offline: it is not revoked (documented), only not renewed.
    expect(issued.access_token.split('.')).toHaveLength(3);

    await server.services.audit.settled();
    const events = await server.database('audit_events').select('details').where({ type: 'api.deleted' });
    expect(events.map((row) => JSON.parse(row.details))).toContainEqual(expect.objectContaining({ audience, removedFrom: service.clientId }));
  });

  it('says so in one line and exits non-zero for an unknown audience', async () => {
    expect(await cli('apis', 'delete', '--audience', 'https://nothing.example.com', '--json'))
      .toEqual({ code: 1, stdout: '', stderr: 'latchkey: no API https://nothing.example.com is registered' });
  });
});
