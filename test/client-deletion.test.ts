import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/database.js';
import * as payloadClientId from '../migrations/0006_payload_client_id.js';
import type { NewClient } from '../src/registry/clients.js';
import { createOidcPayloadStore } from '../src/store/oidc-payloads.js';
import { createClientStore } from '../src/store/clients.js';
import { createBrowser } from './support/browser.js';
import { runCliCapturing } from './support/cli.js';
import { createUser, password } from './support/fixtures.js';
import { discoverRp, postLogoutRedirectUri, redirectUri, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// Deleting a client ends everything it was issued, so registering the same client id again brings none of it back.
let server: TestServer;
let cliEnv: Record<string, string>;

beforeAll(async () => {
  server = await startTestServer();
  cliEnv = { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir };
});
afterAll(() => server.close());

const clientSecret = 'the-same-secret-for-both-registrations-0123';
const registration = (clientId: string): NewClient => ({
  clientId, clientSecret, name: 'Doomed', redirectUris: [redirectUri], postLogoutRedirectUris: [postLogoutRedirectUri],
  grantTypes: ['authorization_code', 'refresh_token'], skipConsent: true,
});

const basic = (clientId: string) => `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;

async function post(path: string, params: Record<string, string>, clientId: string) {
  const response = await fetch(`${server.issuer}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(clientId) },
    body: new URLSearchParams(params),
  });
  return { status: response.status, body: await response.json() as Record<string, unknown> };
}

const userinfo = (accessToken: string) => fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } });

/** Signs a user in to `clientId` (offline_access: the refresh token outlives the session) and to a second app in the same browser. */
async function signedInToTwoApps(clientId: string) {
  await server.services.clients.register(registration(clientId));
  await server.services.clients.register(registration(`${clientId}-other`));
  const user = await createUser(server.services);
  const browser = createBrowser();
  const options = { email: user.email, password, scope: 'openid email offline_access', prompt: 'consent' };
  const { tokens } = await signIn(await discoverRp(server.issuer, clientId, clientSecret), browser, options);
  const other = await signIn(await discoverRp(server.issuer, `${clientId}-other`, clientSecret), browser, options);
  return { tokens, otherTokens: other.tokens };
}

async function expectRevoked(clientId: string, tokens: { access_token: string; refresh_token?: string }) {
  expect((await userinfo(tokens.access_token)).status).toBe(401);
  expect((await post('/token/introspection', { token: tokens.access_token }, clientId)).body).toEqual({ active: false });
  expect((await post('/token/introspection', { token: tokens.refresh_token! }, clientId)).body).toEqual({ active: false });
  expect((await post('/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, clientId)).body.error).toBe('invalid_grant');
}

describe('latchkey clients delete', () => {
  it('ends the access and refresh tokens the client was issued; registering the id again does not revive them', async () => {
    const { tokens, otherTokens } = await signedInToTwoApps('doomed');
    expect((await userinfo(tokens.access_token)).status).toBe(200);

    // Opaque tokens are stored under their own value.
    const stored = (model: string, value: string) => createOidcPayloadStore(server.connection).find(model, value, Date.now());
    expect(await stored('RefreshToken', tokens.refresh_token!)).toBeDefined();

    const deleted = await runCliCapturing(['clients', 'delete', '--client-id', 'doomed'], cliEnv);
    expect(deleted).toMatchObject({ code: 0, stdout: 'deleted client doomed and every grant and token it was issued' });
    expect(await stored('AccessToken', tokens.access_token)).toBeUndefined();
    expect(await stored('RefreshToken', tokens.refresh_token!)).toBeUndefined();
    // The same id and secret again, as an operator re-creating an app would.
    await server.services.clients.register(registration('doomed'));
    await expectRevoked('doomed', tokens);

    // The other app signed in through the same session keeps its tokens.
    expect((await userinfo(otherTokens.access_token)).status).toBe(200);
    expect((await post('/token', { grant_type: 'refresh_token', refresh_token: otherTokens.refresh_token! }, 'doomed-other')).status).toBe(200);
  });

  it('also ends tokens stored before the upgrade that added their client column (migration 0006 fills it in)', async () => {
    const { tokens } = await signedInToTwoApps('legacy');
    // The rows as an older Latchkey wrote them: no client_id column; the migration adds it and reads the payload.
    const database = openDatabase(server.config.databaseUrl, { poolSize: 1 });
    try {
      await payloadClientId.down(database.knex);
      await payloadClientId.up(database.knex);
    } finally {
      await database.destroy();
    }
    expect((await userinfo(tokens.access_token)).status).toBe(200);
    expect((await runCliCapturing(['clients', 'delete', '--client-id', 'legacy'], cliEnv)).code).toBe(0);
    await server.services.clients.register(registration('legacy'));
    await expectRevoked('legacy', tokens);
  });

  it('starts a client registered again with nothing left of the old one, even a token written while it was deleted', async () => {
    const { tokens } = await signedInToTwoApps('raced');
    // A request that had loaded the client before it was deleted stores a token after the deletion: simulated by
    // deleting the client row alone (the store, without the registry), as if its tokens had been deleted before
    // that token was written.
    await createClientStore(server.connection).delete('raced');
    await server.services.clients.register(registration('raced'));
    await expectRevoked('raced', tokens);
  });
});
