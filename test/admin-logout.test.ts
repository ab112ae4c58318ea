import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { startLogoutReceiver, verifyLogoutToken } from './support/logout-receiver.js';
import { authorize, discoverRp, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';
import { runCliCapturing } from './support/cli.js';

type Receiver = Awaited<ReturnType<typeof startLogoutReceiver>>;

let server: TestServer;
let receiverA: Receiver;
let receiverB: Receiver;
let appA: { clientId: string; rp: oidc.Configuration };
let appB: { clientId: string; rp: oidc.Configuration };
let plainApp: { clientId: string; rp: oidc.Configuration };

async function registerApp(backchannelLogoutUri?: string) {
  const client = await createClient(server.services, { backchannelLogoutUri });
  return { clientId: client.clientId, rp: await discoverRp(server.issuer, client.clientId, client.clientSecret!) };
}

beforeAll(async () => {
  [server, receiverA, receiverB] = await Promise.all([startTestServer(), startLogoutReceiver(), startLogoutReceiver()]);
  appA = await registerApp(receiverA.url);
  appB = await registerApp(receiverB.url);
  plainApp = await registerApp();
});
afterAll(async () => {
  await Promise.all([server.close(), receiverA.close(), receiverB.close()]);
});

/** The CLI in-process, as an operator runs it next to the server: same database, keys and issuer. */
async function cli(...argv: string[]) {
  return cliWith({}, ...argv);
}

function cliWith(overrides: Record<string, string>, ...argv: string[]) {
  return runCliCapturing(argv, { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir, ISSUER: server.issuer, ...overrides });
}

/**
 * A user signed in to app A and app B in one browser (one Latchkey session, SSO) and to app A again in a second
 * browser (a second session), plus the plain app without a back-channel URI, with an offline_access token.
 */
async function userWithTwoSessions() {
  const user = await createUser(server.services);
  const laptop = createBrowser();
  const phone = createBrowser();
  const laptopA = await signIn(appA.rp, laptop, { email: user.email, password, consent: true });
  const laptopB = await signIn(appB.rp, laptop, { email: 'unused', password: 'unused', consent: true });
  const laptopPlain = await signIn(plainApp.rp, laptop, { email: 'unused', password: 'unused', scope: 'openid offline_access', prompt: 'consent', consent: true });
  const phoneA = await signIn(appA.rp, phone, { email: user.email, password, consent: true });
  return { user, laptop, laptopA, laptopB, laptopPlain, phoneA };
}

const sidOf = (flow: { tokens: oidc.TokenEndpointResponseHelpers }) => flow.tokens.claims()!.sid as string;

describe('latchkey users sessions', () => {
  it('lists each session with its clients and their sids, never the session cookie value', async () => {
    const { user, laptopA, laptopB, phoneA } = await userWithTwoSessions();
    const listed = await cli('users', 'sessions', '--email', user.email, '--json');
    expect(listed.code).toBe(0);
    const sessions = JSON.parse(listed.stdout) as { uid: string; signedInAt: string; expiresAt: string; clients: { clientId: string; sid: string }[] }[];
    expect(sessions).toHaveLength(2);
    const clientSids = sessions.map((session) => Object.fromEntries(session.clients.map((c) => [c.clientId, c.sid])));
    expect(clientSids).toContainEqual(expect.objectContaining({ [appA.clientId]: sidOf(laptopA), [appB.clientId]: sidOf(laptopB), [plainApp.clientId]: expect.any(String) }));
    expect(clientSids).toContainEqual({ [appA.clientId]: sidOf(phoneA) });
    for (const session of sessions) {
      expect(Date.parse(session.expiresAt)).toBeGreaterThan(Date.now());
      expect(Date.parse(session.signedInAt)).toBeLessThanOrEqual(Date.now());
    }

    const rows = await server.database('oidc_payloads').select('id').where({ model: 'Session', account_id: user.id });
    const human = await cli('users', 'sessions', '--email', user.email);
    expect(human.stdout).toContain(sessions[0].uid);
    expect(human.stdout).toContain(`${appA.clientId} (${sidOf(phoneA)})`);
    for (const { id } of rows) expect(human.stdout + listed.stdout).not.toContain(id);
  });

  it('refuses an unknown email with one line and exit code 1', async () => {
    expect(await cli('users', 'sessions', '--email', 'nobody@example.com')).toMatchObject({ code: 1, stderr: 'latchkey: no user with email nobody@example.com' });
  });
});

describe('latchkey users logout', () => {
  it('ends every session, revokes every token and sends each client a logout token per session', async () => {
    const { user, laptop, laptopA, laptopB, laptopPlain, phoneA } = await userWithTwoSessions();
    const [beforeA, beforeB] = [receiverA.tokens.length, receiverB.tokens.length];

    const result = await cli('users', 'logout', '--email', user.email);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain(`signed ${user.email} out everywhere`);
    expect(result.stdout).toContain('(2 sessions ended)');
    expect(result.stdout).toContain(`back-channel logout delivered to ${appA.clientId}`);
    expect(result.stdout).toContain(`back-channel logout delivered to ${appB.clientId}`);
    expect(result.stdout).not.toContain(plainApp.clientId);

    // Signed by the CLI with the server's keys and issuer: the app verifies it against the server's JWKS.
    const tokensA = await Promise.all(receiverA.tokens.slice(beforeA).map((token) => verifyLogoutToken(token, server.issuer, appA.clientId)));
    const tokensB = await Promise.all(receiverB.tokens.slice(beforeB).map((token) => verifyLogoutToken(token, server.issuer, appB.clientId)));
    expect(tokensA.map((token) => token.sid).sort()).toEqual([sidOf(laptopA), sidOf(phoneA)].sort());
    expect(tokensB.map((token) => token.sid)).toEqual([sidOf(laptopB)]);
    for (const token of [...tokensA, ...tokensB]) expect(token.sub).toBe(user.id);

    // "Revoke all my tokens": session-bound and offline refresh tokens alike.
    for (const [app, flow] of [[appA, laptopA], [appB, laptopB], [plainApp, laptopPlain], [appA, phoneA]] as const) {
      await expect(oidc.refreshTokenGrant(app.rp, flow.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    }
    expect((await oidc.tokenIntrospection(appA.rp, laptopA.tokens.access_token)).active).toBe(false);
    expect(JSON.parse((await cli('users', 'sessions', '--email', user.email, '--json')).stdout)).toEqual([]);
    // The browser has to sign in again.
    const again = await laptop.follow(oidc.buildAuthorizationUrl(appA.rp, {
      redirect_uri: 'http://localhost:8765/callback', scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    }).href);
    expect(again.html).toContain('name="password"');
  });

  it('still ends the sessions when a client cannot be reached, reports it per client and exits 1', async () => {
    const { user, laptopA, laptopB } = await userWithTwoSessions();
    receiverB.status = 503;
    let result;
    try {
      result = await cli('users', 'logout', '--email', user.email, '--json');
    } finally {
      receiverB.status = 200;
    }
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`the sessions of ${user.email} ended, but 1 of 3 logout tokens were not delivered (${appB.clientId})`);
    expect(result.stderr.split('\n')).toHaveLength(1);
    const report = JSON.parse(result.stdout);
    expect(report.logout.sessionsEnded).toBe(2);
    expect(report.logout.deliveries).toEqual(expect.arrayContaining([
      { clientId: appB.clientId, sid: sidOf(laptopB), isDelivered: false, error: expect.stringContaining('503') },
      { clientId: appA.clientId, sid: sidOf(laptopA), isDelivered: true },
    ]));
    await expect(oidc.refreshTokenGrant(appB.rp, laptopB.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await server.services.sessions.list(user.id)).toEqual([]);
  });

  it('still ends the sessions when the CLI cannot sign logout tokens, and names the apps not told', async () => {
    const { user } = await userWithTwoSessions();
    const result = await cliWith({ KEYS_DIR: path.join(server.dir, 'no-keys-here') }, 'users', 'logout', '--email', user.email);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`back-channel logout NOT delivered to ${appA.clientId}: no signing keys in`);
    expect(result.stderr).toContain('3 of 3 logout tokens were not delivered');
    expect(await server.services.sessions.list(user.id)).toEqual([]);
  });

  it('reports a user without sessions plainly', async () => {
    const user = await createUser(server.services);
    const result = await cli('users', 'logout', '--email', user.email);
    expect(result).toMatchObject({ code: 0, stdout: `signed ${user.email} out everywhere; their grants and tokens are revoked (0 sessions ended)` });
  });
});

describe('latchkey users disable', () => {
  it('sends the same logout tokens, from the real latchkey process', async () => {
    const { user, laptopA } = await userWithTwoSessions();
    const before = receiverA.tokens.length;
    const bin = path.resolve('bin/latchkey.js');
    const env = { ...process.env, DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir, ISSUER: server.issuer };
    const { stdout } = await promisify(execFile)(process.execPath, [bin, 'users', 'disable', '--email', user.email], { env });
    expect(stdout).toContain(`disabled ${user.email}`);
    expect(stdout).toContain(`back-channel logout delivered to ${appA.clientId}`);
    const sids = await Promise.all(receiverA.tokens.slice(before).map(async (token) => (await verifyLogoutToken(token, server.issuer, appA.clientId)).sid));
    expect(sids).toContain(sidOf(laptopA));
    expect(sids).toHaveLength(2);
  });

  it('refuses a session that a request in flight saved again after the user was disabled, even once re-enabled', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    await signIn(appA.rp, browser, { email: user.email, password, consent: true });
    const row = await server.database('oidc_payloads').where({ model: 'Session', account_id: user.id }).first();
    await server.services.accounts.disable(user.email);
    // oidc-provider saves a session at the end of every request that used it: one in flight during `users disable`
    // writes the deleted row back (signed in a little earlier: the cutoff is kept to the second).
    const payload = JSON.parse(row.payload);
    await server.database('oidc_payloads').insert({ ...row, payload: JSON.stringify({ ...payload, loginTs: payload.loginTs - 5 }) });
    // Single sign-on finds no one to sign in: the login form, not an error page (it was a 500).
    const disabled = await authorize(appA.rp, browser, { email: 'unused', password: 'unused' });
    expect(disabled.page.status).toBe(200);
    expect(disabled.page.html).toContain('name="password"');
    const silent = await authorize(appA.rp, browser, { email: 'unused', password: 'unused', prompt: 'none' });
    expect(silent.callbackUrl.searchParams.get('error')).toBe('login_required');
    // Enabled again, the person signs in again: the session from before the disabling stays dead.
    await server.services.accounts.enable(user.email);
    const enabled = await authorize(appA.rp, browser, { email: 'unused', password: 'unused', prompt: 'none' });
    expect(enabled.callbackUrl.searchParams.get('error')).toBe('login_required');
  });
});

describe('session expiry', () => {
  it('sends logout tokens for sessions the purge finds expired', async () => {
    const { user, laptopA, laptopB } = await userWithTwoSessions();
    const [beforeA, beforeB] = [receiverA.tokens.length, receiverB.tokens.length];
    const [{ longest }] = await server.database('oidc_payloads').where({ model: 'Session', account_id: user.id }).max({ longest: 'expires_at' });
    await server.purgeExpired(Number(longest) + 1);
    const sidsA = await Promise.all(receiverA.tokens.slice(beforeA).map(async (token) => (await verifyLogoutToken(token, server.issuer, appA.clientId)).sid));
    const sidsB = await Promise.all(receiverB.tokens.slice(beforeB).map(async (token) => (await verifyLogoutToken(token, server.issuer, appB.clientId)).sid));
    expect(sidsA).toContain(sidOf(laptopA));
    expect(sidsB).toContain(sidOf(laptopB));
    expect(await server.services.sessions.list(user.id)).toEqual([]);
  });
});
