import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../src/config.js';
import { createFetch } from '../src/oidc/outgoing-requests.js';
import { createBrowser, type Browser } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { logoutEvent, startLogoutReceiver, verifyLogoutToken } from './support/logout-receiver.js';
import { discoverRp, postLogoutRedirectUri, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';
import { runCliCapturing } from './support/cli.js';

type Receiver = Awaited<ReturnType<typeof startLogoutReceiver>>;

let server: TestServer;
let receiver: Receiver;

beforeAll(async () => {
  [server, receiver] = await Promise.all([startTestServer(), startLogoutReceiver()]);
});
afterAll(async () => {
  await Promise.all([server.close(), receiver.close()]);
});

/** A client with a back-channel logout URI, a user signed in to it, and the tokens the app holds. */
async function signedInWithBackchannel(at: TestServer, backchannelLogoutUri: string, sessionRequired?: boolean) {
  const client = await createClient(at.services, { backchannelLogoutUri, backchannelLogoutSessionRequired: sessionRequired });
  const rp = await discoverRp(at.issuer, client.clientId, client.clientSecret!);
  const user = await createUser(at.services);
  const browser = createBrowser();
  const { tokens } = await signIn(rp, browser, { email: user.email, password, consent: true });
  return { client, rp, user, browser, tokens };
}

/** RP-initiated logout through the real confirmation page, choosing "Yes, sign me out". */
async function logOut(rp: oidc.Configuration, browser: Browser, idToken: string) {
  const confirm = await browser.follow(oidc.buildEndSessionUrl(rp, { id_token_hint: idToken, post_logout_redirect_uri: postLogoutRedirectUri }).href);
  return browser.submit(confirm, 'form', { logout: 'yes' }, postLogoutRedirectUri);
}

describe('back-channel logout (OpenID Connect Back-Channel Logout 1.0)', () => {
  it('advertises back-channel logout with sid in discovery', async () => {
    const metadata = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json();
    expect(metadata).toMatchObject({ backchannel_logout_supported: true, backchannel_logout_session_supported: true });
  });

  it('sends a signed logout token with the ID token sid to the client when the user logs out', async () => {
    const { client, rp, user, browser, tokens } = await signedInWithBackchannel(server, receiver.url);
    const idTokenSid = tokens.claims()!.sid;
    expect(idTokenSid).toEqual(expect.any(String));
    const before = receiver.tokens.length;

    const done = await logOut(rp, browser, tokens.id_token!);
    expect(done.url).toBe(postLogoutRedirectUri);

    // oidc-provider waits for the deliveries before it answers the logout, so the token is already here.
    expect(receiver.tokens).toHaveLength(before + 1);
    const payload = await verifyLogoutToken(receiver.tokens.at(-1)!, server.issuer, client.clientId);
    expect(payload).toMatchObject({ iss: server.issuer, aud: client.clientId, sub: user.id, sid: idTokenSid, events: { [logoutEvent]: {} } });
    expect(payload.jti).toEqual(expect.any(String));
    expect(payload.nonce).toBeUndefined();
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(120);
  });

  it('leaves sid out of the ID token and the logout token of a client that does not require it', async () => {
    const { client, rp, user, browser, tokens } = await signedInWithBackchannel(server, receiver.url, false);
    expect(tokens.claims()!.sid).toBeUndefined();
    await logOut(rp, browser, tokens.id_token!);
    const payload = await verifyLogoutToken(receiver.tokens.at(-1)!, server.issuer, client.clientId);
    expect(payload.sub).toBe(user.id);
    expect(payload.sid).toBeUndefined();
  });

  it('still logs the user out when the client\'s logout endpoint fails', async () => {
    const { rp, browser, tokens } = await signedInWithBackchannel(server, receiver.url);
    receiver.status = 500;
    try {
      const done = await logOut(rp, browser, tokens.id_token!);
      expect(done.url).toBe(postLogoutRedirectUri);
    } finally {
      receiver.status = 200;
    }
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});

describe('BACKCHANNEL_ALLOW_PRIVATE_TARGETS=false', () => {
  it('sends nothing to a loopback logout endpoint, and the logout still succeeds', async () => {
    const [guarded, loopback] = await Promise.all([startTestServer({ backchannelAllowPrivateTargets: false }), startLogoutReceiver()]);
    try {
      const { rp, browser, tokens } = await signedInWithBackchannel(guarded, loopback.url);
      const done = await logOut(rp, browser, tokens.id_token!);
      expect(done.url).toBe(postLogoutRedirectUri);
      expect(loopback.requests).toBe(0);
      await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    } finally {
      await Promise.all([guarded.close(), loopback.close()]);
    }
  });

  it('lifts the SSRF-protected dispatcher for logout-token POSTs only, never for other outgoing requests', async () => {
    // oidc-provider hands its SSRF-protected undici dispatcher in `init`; this stand-in refuses every request.
    let refused = 0;
    const protectedDispatcher = { dispatch() { refused += 1; throw new Error('refused by the protected dispatcher'); } };
    const init = (overrides: RequestInit) => ({ signal: AbortSignal.timeout(2500), ...overrides, dispatcher: protectedDispatcher }) as RequestInit;
    const logoutToken = () => init({ method: 'POST', body: new URLSearchParams({ logout_token: 'x' }) });
    const allowing = createFetch({ backchannelAllowPrivateTargets: true } as Config);
    const before = receiver.requests;

    expect((await allowing(receiver.url, logoutToken())).status).toBe(200);
    // A jwks_uri or sector_identifier_uri fetch (GET), or a POST of anything else, keeps the protection.
    await expect(allowing(receiver.url, init({ method: 'GET' }))).rejects.toThrow('fetch failed');
    await expect(allowing(receiver.url, init({ method: 'POST', body: new URLSearchParams({ token: 'x' }) }))).rejects.toThrow('fetch failed');
    await expect(createFetch({ backchannelAllowPrivateTargets: false } as Config)(receiver.url, logoutToken())).rejects.toThrow('fetch failed');
    expect(refused).toBe(3);
    expect(receiver.requests).toBe(before + 1);
  });

  it('defaults to true outside production and false in production, and must be true or false', () => {
    expect(loadConfig({}).backchannelAllowPrivateTargets).toBe(true);
    expect(loadConfig({ NODE_ENV: 'production' }).backchannelAllowPrivateTargets).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', BACKCHANNEL_ALLOW_PRIVATE_TARGETS: 'true' }).backchannelAllowPrivateTargets).toBe(true);
    expect(loadConfig({ BACKCHANNEL_ALLOW_PRIVATE_TARGETS: 'false' }).backchannelAllowPrivateTargets).toBe(false);
    expect(() => loadConfig({ BACKCHANNEL_ALLOW_PRIVATE_TARGETS: 'yes' })).toThrow(/BACKCHANNEL_ALLOW_PRIVATE_TARGETS must be true or false/);
  });
});

describe('clients create --backchannel-logout-uri', () => {
  const cli = (argv: string[], env: Record<string, string> = {}) =>
    runCliCapturing(argv, { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir, ...env });
  let counter = 0;
  const create = (...extra: string[]) => ['clients', 'create', '--client-id', `bcl-${++counter}`, '--redirect-uri', 'https://app.example.com/cb', ...extra];

  it('registers the URI, sid required by default, and hands it to the provider', async () => {
    const result = await cli([...create('--backchannel-logout-uri', 'https://app.example.com/logout?tenant=1'), '--json']);
    expect(result.code).toBe(0);
    const created = JSON.parse(result.stdout);
    expect(created).toMatchObject({ backchannelLogoutUri: 'https://app.example.com/logout?tenant=1', backchannelLogoutSessionRequired: true });
    const withoutSid = JSON.parse((await cli([...create('--backchannel-logout-uri', 'http://localhost:4000/logout', '--backchannel-logout-session-required', 'false'), '--json'])).stdout);
    expect(withoutSid).toMatchObject({ backchannelLogoutUri: 'http://localhost:4000/logout', backchannelLogoutSessionRequired: false });
  });

  it('allows plain http to another host outside production only', async () => {
    expect((await cli(create('--backchannel-logout-uri', 'http://app.internal:3000/logout'))).code).toBe(0);
    const refused = await cli(create('--backchannel-logout-uri', 'http://app.internal:3000/logout'), { NODE_ENV: 'production', ISSUER: 'https://id.example.com' });
    expect(refused).toMatchObject({ code: 1, stderr: expect.stringContaining('must use https when NODE_ENV=production') });
    expect((await cli(create('--backchannel-logout-uri', 'http://127.0.0.1:3000/logout'), { NODE_ENV: 'production', ISSUER: 'https://id.example.com' })).code).toBe(0);
  });

  it.each([
    [['--backchannel-logout-uri', '/logout'], 'is not an absolute URI'],
    [['--backchannel-logout-uri', 'https://app.example.com/logout#x'], 'must not contain a fragment'],
    [['--backchannel-logout-uri', 'ftp://app.example.com/logout'], 'must use https or http'],
    [['--backchannel-logout-uri', 'https://u:p@app.example.com/logout'], 'must not contain credentials'],
    [['--backchannel-logout-session-required', 'false'], 'needs a back-channel logout URI'],
    [['--backchannel-logout-uri', 'https://app.example.com/logout', '--backchannel-logout-session-required', 'no'], 'must be true or false'],
  ])('refuses %j with a one-line message', async (extra, message) => {
    const result = await cli(create(...extra));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
    expect(result.stderr.split('\n')).toHaveLength(1);
  });
});
