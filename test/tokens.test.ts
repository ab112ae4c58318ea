import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;
let rp: oidc.Configuration;

beforeAll(async () => {
  server = await startTestServer();
  const client = await createClient(server.services);
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(() => server.close());

async function signedIn(scope = 'openid email profile') {
  const user = await createUser(server.services);
  const browser = createBrowser();
  const { tokens } = await signIn(rp, browser, { email: user.email, password, scope, consent: true });
  return { user, browser, tokens };
}

describe('refresh tokens', () => {
  it('issues a refresh token with the code exchange and rotates it on every use', async () => {
    const { user, tokens } = await signedIn();
    expect(tokens.refresh_token).toBeTruthy();
    expect(tokens.expires_in).toBe(300);

    const first = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    expect(first.refresh_token).toBeTruthy();
    expect(first.refresh_token).not.toBe(tokens.refresh_token);
    expect(first.claims()!.sub).toBe(user.id);

    const second = await oidc.refreshTokenGrant(rp, first.refresh_token!);
    expect(second.refresh_token).not.toBe(first.refresh_token);
  });

  it('rejects a refresh token used twice and revokes the grant', async () => {
    const { tokens } = await signedIn();
    const rotated = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // The replay revoked the whole grant: the legitimate successor no longer works either.
    await expect(oidc.refreshTokenGrant(rp, rotated.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oidc.tokenIntrospection(rp, rotated.access_token)).active).toBe(false);
  });

  it('refuses to refresh for a user who has been disabled', async () => {
    const { user, tokens } = await signedIn();
    await server.services.accounts.disable(user.email);
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.fetchUserInfo(rp, tokens.access_token, user.id)).rejects.toBeDefined();
  });

  it('ends every session and token of a user whose password is reset', async () => {
    const { user, tokens } = await signedIn();
    await server.services.accounts.setPassword(user.email, 'a brand new passphrase');
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});

describe('revocation (RFC 7009) and introspection (RFC 7662)', () => {
  it('introspects an active access token for the client that holds it', async () => {
    const { user, tokens } = await signedIn();
    const result = await oidc.tokenIntrospection(rp, tokens.access_token);
    expect(result).toMatchObject({ active: true, sub: user.id, client_id: rp.clientMetadata().client_id, token_type: 'Bearer' });
    expect(result.scope).toContain('openid');
  });

  it('revokes a refresh token and the grant behind it', async () => {
    const { tokens } = await signedIn();
    await oidc.tokenRevocation(rp, tokens.refresh_token!, { token_type_hint: 'refresh_token' });
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
  });

  it('revokes an access token', async () => {
    const { tokens } = await signedIn();
    await oidc.tokenRevocation(rp, tokens.access_token);
    expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
  });

  it('does not let a public client introspect tokens', async () => {
    const { tokens } = await signedIn();
    const publicClient = await createClient(server.services, { isPublic: true });
    const publicRp = await discoverRp(server.issuer, publicClient.clientId);
    expect((await oidc.tokenIntrospection(publicRp, tokens.access_token)).active).toBe(false);
  });

  it('rejects introspection with a wrong client secret', async () => {
    const { tokens } = await signedIn();
    const response = await fetch(`${server.issuer}/token/introspection`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${rp.clientMetadata().client_id}:wrong-secret`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: tokens.access_token }),
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: 'invalid_client' });
  });
});

describe('RP-initiated logout', () => {
  it('ends the session, revokes the session-bound refresh token and redirects to the registered URI', async () => {
    const { browser, tokens } = await signedIn();
    const logoutUrl = oidc.buildEndSessionUrl(rp, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: 'http://localhost:8765/signed-out',
      state: 'bye',
    });
    const confirm = await browser.follow(logoutUrl.href);
    expect(confirm.html).toContain('Sign out');
    const done = await browser.submit(confirm, 'form', { logout: 'yes' }, 'http://localhost:8765/signed-out');
    expect(done.url).toBe('http://localhost:8765/signed-out?state=bye');

    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // The browser has no session any more: a new authorization shows the login page.
    const again = await browser.follow(oidc.buildAuthorizationUrl(rp, {
      redirect_uri: 'http://localhost:8765/callback', scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    }).href);
    expect(again.html).toContain('name="password"');
  });

  it('keeps an offline_access refresh token working after logout', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    const { tokens } = await signIn(rp, browser, { email: user.email, password, scope: 'openid offline_access', prompt: 'consent', consent: true });
    const confirm = await browser.follow(oidc.buildEndSessionUrl(rp, { id_token_hint: tokens.id_token! }).href);
    await browser.submit(confirm, 'form', { logout: 'yes' });
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    expect(refreshed.access_token).toBeTruthy();
  });

  it('refuses an unregistered post_logout_redirect_uri without redirecting', async () => {
    const { browser, tokens } = await signedIn();
    const page = await browser.follow(oidc.buildEndSessionUrl(rp, {
      id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'https://evil.example/',
    }).href);
    expect(page.status).toBe(400);
    expect(page.url).not.toContain('evil.example/?');
    expect(page.html).toContain('post_logout_redirect_uri');
  });
});

describe('expired rows', () => {
  it('purges tokens, codes and sessions once they expire, so the table does not keep growing', async () => {
    const { database } = server;
    const countRows = async () => Number((await database('oidc_payloads').count({ count: '*' }))[0].count);
    await signedIn();
    const [{ longest }] = await database('oidc_payloads').max({ longest: 'expires_at' });
    expect(await countRows()).toBeGreaterThan(0);
    const purged = await server.purgeExpired(Number(longest) + 1);
    expect(purged).toBeGreaterThan(0);
    expect(await countRows()).toBe(0);
  });
});
