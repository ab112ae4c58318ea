import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { authorize, discoverRp, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';
import { countStatements, fewestStatements } from './support/statement-count.js';

// The access token is read with its grant and session in one statement (src/oidc/adapter.ts); these tests show that
// each request still reads them afresh: nothing read for one request answers another.
let server: TestServer;
let rp: oidc.Configuration;

beforeAll(async () => {
  server = await startTestServer();
  const client = await createClient(server.services);
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(() => server.close());

async function signedIn() {
  const user = await createUser(server.services);
  const { tokens } = await signIn(rp, createBrowser(), { email: user.email, password, scope: 'openid email', consent: true });
  const [row] = await server.database('oidc_payloads').where({ model: 'AccessToken', id: tokens.access_token }).select('grant_id', 'payload');
  return { user, tokens, grantId: row.grant_id as string, sessionUid: JSON.parse(row.payload).sessionUid as string };
}

const userinfo = (accessToken: string, sub: string) => oidc.fetchUserInfo(rp, accessToken, sub);
const active = async (accessToken: string) => (await oidc.tokenIntrospection(rp, accessToken)).active;

describe('an access token read with its grant and session', () => {
  it('answers userinfo and introspection again and again', async () => {
    const { user, tokens } = await signedIn();
    for (let i = 0; i < 3; i++) {
      expect((await userinfo(tokens.access_token, user.id)).email).toBe(user.email);
      expect(await active(tokens.access_token)).toBe(true);
    }
  });

  it('is refused on the very next request once its grant is gone (the token row itself left in place)', async () => {
    const { user, tokens, grantId } = await signedIn();
    expect((await userinfo(tokens.access_token, user.id)).sub).toBe(user.id);
    await server.database('oidc_payloads').where({ model: 'Grant', id: grantId }).delete();
    await expect(userinfo(tokens.access_token, user.id)).rejects.toMatchObject({ status: 401 });
    expect(await active(tokens.access_token)).toBe(false);
  });

  it('is refused on the very next request once its session has ended', async () => {
    const { user, tokens, sessionUid } = await signedIn();
    expect(await active(tokens.access_token)).toBe(true);
    expect(await server.database('oidc_payloads').where({ model: 'Session', uid: sessionUid }).delete()).toBe(1);
    await expect(userinfo(tokens.access_token, user.id)).rejects.toMatchObject({ status: 401 });
    expect(await active(tokens.access_token)).toBe(false);
  });

  it('is refused on the very next request once its user is disabled', async () => {
    const { user, tokens } = await signedIn();
    expect((await userinfo(tokens.access_token, user.id)).sub).toBe(user.id);
    await server.services.accounts.disable(user.email);
    await expect(userinfo(tokens.access_token, user.id)).rejects.toBeDefined();
    expect(await active(tokens.access_token)).toBe(false);
  });

  it('takes three statements for userinfo (token with grant and session, client, account; five before) and three for introspection (four before on SQLite, five on PostgreSQL)', async () => {
    const { user, tokens } = await signedIn();
    await userinfo(tokens.access_token, user.id);
    const counts = {
      userinfo: await fewestStatements(() => userinfo(tokens.access_token, user.id)),
      introspection: await fewestStatements(() => oidc.tokenIntrospection(rp, tokens.access_token, { token_type_hint: 'access_token' })),
    };
    expect(counts).toEqual({ userinfo: 3, introspection: 3 });
  });

  it('reads the grant and session with the code at the code exchange and with the refresh token at a refresh (6 statements each, 8 before)', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    await signIn(rp, browser, { email: user.email, password, scope: 'openid email offline_access', consent: true });
    let refreshToken = '';
    const exchange = async () => {
      const flow = await authorize(rp, browser, { email: user.email, password, scope: 'openid email offline_access' });
      const redeem = () => oidc.authorizationCodeGrant(rp, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
      return countStatements(async () => (refreshToken = (await redeem()).refresh_token!));
    };
    const refresh = () => countStatements(async () => (refreshToken = (await oidc.refreshTokenGrant(rp, refreshToken)).refresh_token!));
    const fewest = async (run: () => Promise<number>) => Math.min(await run(), await run(), await run());
    const counts = { codeExchange: await fewest(exchange), refresh: await fewest(refresh) };
    expect(counts).toEqual({ codeExchange: 6, refresh: 6 });
  });
});
