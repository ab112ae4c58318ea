import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { ensureSigningKey, readRetiredKeys, readSigningKeys, removeAgedOutKeys, rotateSigningKey, signingKeyRetentionMs } from '../src/signing-keys.js';
import { createBrowser, textOf } from './support/browser.js';
import { runCliCapturing } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { spawnLatchkey } from './support/process.js';
import { discoverRp, postLogoutRedirectUri, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

const audience = 'https://api.example.test';

type Published = { keys: { kid: string }[] };
const publishedKids = async (issuer: string) =>
  ((await (await fetch(`${issuer}/.well-known/jwks.json`)).json()) as Published).keys.map((key) => key.kid);

/** What an API does: verify against the JWKS as published now (a fresh cache). */
const verifyWithJwks = (server: TestServer, token: string, expected: { audience: string; typ?: string }) =>
  jwtVerify(token, createRemoteJWKSet(new URL(`${server.issuer}/.well-known/jwks.json`)), { issuer: server.issuer, ...expected });

/** RP-initiated logout with the ID token as hint, as an app sends it (no client_id). */
const endSession = (server: TestServer, idTokenHint: string) => fetch(
  `${server.issuer}/session/end?${new URLSearchParams({ id_token_hint: idTokenHint, post_logout_redirect_uri: postLogoutRedirectUri })}`,
  { redirect: 'manual', headers: { accept: 'text/html' } },
);

async function expectHintAccepted(server: TestServer, idToken: string) {
  const response = await endSession(server, idToken);
  expect(response.status).toBe(200);
  expect(await response.text()).toContain('/session/end/confirm');
}

async function expectHintRefused(server: TestServer, idToken: string) {
  const response = await endSession(server, idToken);
  expect(response.status).toBe(400);
  expect(response.headers.get('location')).toBeNull();
  expect(textOf(await response.text(), '.description')).toBe('could not validate id_token_hint');
}

/** A real ID token (sign-in through the login form) and a real JWT access token for the API, with their client. */
async function issueTokens(server: TestServer) {
  const client = await createClient(server.services, { grantTypes: ['authorization_code', 'client_credentials'], skipConsent: true, apis: [{ audience, scopes: ['read'] }] });
  const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
  const user = await createUser(server.services);
  const { tokens } = await signIn(rp, createBrowser(), { email: user.email, password });
  const { access_token: accessToken } = await oidc.clientCredentialsGrant(rp, { resource: audience, scope: 'read' });
  return { rp, clientId: client.clientId, idToken: tokens.id_token!, accessToken };
}

const cliEnv = (server: TestServer) => ({
  DATABASE_URL: server.config.databaseUrl,
  KEYS_DIR: server.config.keysDir,
  KEYS_RELOAD_INTERVAL: String(server.config.keysReloadIntervalSeconds),
  ISSUER: server.issuer,
});
const keysCli = (server: TestServer, ...argv: string[]) => runCliCapturing(['keys', ...argv], cliEnv(server));
const signingKid = (server: TestServer) => readSigningKeys(server.config.keysDir).find((key) => key.activatesAt <= Date.now())!.jwk.kid;

describe('latchkey keys retire', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
    await server.services.apis.register(audience, ['read']);
  });
  afterAll(() => server?.close());

  it('withdraws a key at once: the JWKS drops it, and neither an API nor end_session accepts what it signed', async () => {
    const leaked = readSigningKeys(server.config.keysDir)[0];
    const { idToken, accessToken, clientId } = await issueTokens(server);
    expect(decodeProtectedHeader(idToken).kid).toBe(leaked.jwk.kid);
    expect(decodeProtectedHeader(accessToken).kid).toBe(leaked.jwk.kid);
    // Control: both verify, and the ID token is a valid logout hint.
    await verifyWithJwks(server, idToken, { audience: clientId });
    await verifyWithJwks(server, accessToken, { audience, typ: 'at+jwt' });
    await expectHintAccepted(server, idToken);

    const rotated = await keysCli(server, 'rotate', '--now', '--json');
    expect(rotated.code).toBe(0);
    const fresh = JSON.parse(rotated.stdout).kid as string;
    const retired = await keysCli(server, 'retire', `--kid=${leaked.jwk.kid}`, '--json');
    expect(retired.stderr).toBe('');
    expect(retired.code).toBe(0);
    expect(JSON.parse(retired.stdout)).toMatchObject({ kid: leaked.jwk.kid, status: 'retired', takesOver: null });

    // The running server learns it through its reload (the KEYS_RELOAD_INTERVAL timer and SIGHUP call this).
    expect(await server.reloadSigningKeys()).toBe(true);
    expect(await publishedKids(server.issuer)).toEqual([fresh]);
    await expect(verifyWithJwks(server, idToken, { audience: clientId })).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
    await expect(verifyWithJwks(server, accessToken, { audience, typ: 'at+jwt' })).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
    await expectHintRefused(server, idToken);

    // Tokens issued now are signed with the new key and verify.
    const after = await issueTokens(server);
    expect(decodeProtectedHeader(after.accessToken).kid).toBe(fresh);
    await verifyWithJwks(server, after.accessToken, { audience, typ: 'at+jwt' });
    await expectHintAccepted(server, after.idToken);

    // The private key is gone from KEYS_DIR; a record says when it was retired.
    const everything = fs.readdirSync(server.config.keysDir).map((name) => fs.readFileSync(path.join(server.config.keysDir, name), 'utf8')).join('\n');
    expect(everything).not.toContain(leaked.jwk.d);
    const listed = JSON.parse((await keysCli(server, 'list', '--json')).stdout) as { kid: string; status: string }[];
    expect(listed.map((key) => [key.kid, key.status])).toEqual([[fresh, 'signing'], [leaked.jwk.kid, 'retired']]);

    const events = await server.services.auditEvents.list({ limit: 100 });
    expect(events.filter((event) => event.type === 'key.retired').map((event) => event.details)).toEqual([
      expect.objectContaining({ kid: leaked.jwk.kid, actor: expect.stringMatching(/^cli/) }),
    ]);
  });

  it('retires the key that signs now only when a newer key exists, which then signs at once (never an older one)', async () => {
    const older = signingKid(server);
    const current = JSON.parse((await keysCli(server, 'rotate', '--now', '--json')).stdout).kid as string;
    const refused = await keysCli(server, 'retire', `--kid=${current}`);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`latchkey: refusing to retire ${current}: it signs now and no newer key can take over; run "latchkey keys rotate --now" first`);

    const pending = JSON.parse((await keysCli(server, 'rotate', '--json')).stdout);
    expect(pending.status).toBe('pending');
    const retired = await keysCli(server, 'retire', `--kid=${current}`);
    expect(retired.code).toBe(0);
    expect(retired.stdout).toContain(`key ${pending.kid} signs from now on`);
    expect(await server.reloadSigningKeys()).toBe(true);
    // The pending key signs, not the older key that the retired one had replaced.
    expect(await publishedKids(server.issuer)).toEqual([pending.kid, older]);
    const { accessToken } = await issueTokens(server);
    expect(decodeProtectedHeader(accessToken).kid).toBe(pending.kid);

    // A key that does not sign is retired without further ado.
    expect((await keysCli(server, 'retire', `--kid=${older}`)).code).toBe(0);
    expect(await server.reloadSigningKeys()).toBe(true);
    expect(await publishedKids(server.issuer)).toEqual([pending.kid]);
  });

  it.each([
    ['the only key', (server: TestServer) => [`--kid=${signingKid(server)}`], /^latchkey: refusing to retire \S+: it is the only signing key; run "latchkey keys rotate --now" first$/],
    ['an unknown kid', () => ['--kid', 'no-such-key'], /^latchkey: no signing key with kid no-such-key in .+ \(KEYS_DIR\)$/],
    ['no --kid', () => [], /^latchkey: --kid is required$/],
    // A kid is base64url and may start with "-": the one line says how to pass it.
    ['a kid starting with "-" given as a separate argument', () => ['--kid', '-abc'], /^latchkey: Option '--kid' argument is ambiguous\..* use '--kid=-XYZ'\.$/],
  ])('refuses to retire %s with one line and exit 1, changing nothing', async (_name, argv, message) => {
    const before = fs.readdirSync(server.config.keysDir).map((name) => fs.readFileSync(path.join(server.config.keysDir, name), 'utf8'));
    const result = await keysCli(server, 'retire', ...argv(server));
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(fs.readdirSync(server.config.keysDir).map((name) => fs.readFileSync(path.join(server.config.keysDir, name), 'utf8'))).toEqual(before);
    expect(await server.reloadSigningKeys()).toBe(false);
  });

  it('refuses to retire a key twice', async () => {
    const [retired] = JSON.parse((await keysCli(server, 'list', '--json')).stdout).filter((key: { status: string }) => key.status === 'retired');
    const result = await keysCli(server, 'retire', `--kid=${retired.kid}`);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^latchkey: key ${retired.kid} was already retired at `));
  });
});

describe('keys that stopped signing age out of the JWKS', () => {
  // Here SESSION_TTL is the longest use of a signed token (an ID token as a logout hint); the reload interval is
  // added because an instance may sign with the old key until its next reload.
  const overrides: Partial<Config> = { idTokenTtlSeconds: 600, accessTokenTtlSeconds: 300, sessionTtlSeconds: 7200, keysReloadIntervalSeconds: 3600 };
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(overrides);
  });
  afterAll(() => server?.close());

  it('keeps a superseded key published until the longest token use has passed after it stopped signing, then drops it', async () => {
    const retentionMs = signingKeyRetentionMs(server.config);
    expect(retentionMs).toBe((3600 + 7200) * 1000);
    const old = readSigningKeys(server.config.keysDir)[0];
    const client = await createClient(server.services, { skipConsent: true });
    const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const { tokens } = await signIn(rp, createBrowser(), { email: (await createUser(server.services)).email, password });

    const stoppedSigning = Date.now();
    const rotated = await rotateSigningKey(server.config.keysDir, { now: stoppedSigning });
    expect(await server.reloadSigningKeys(stoppedSigning)).toBe(true);
    expect(await publishedKids(server.issuer)).toEqual([rotated.jwk.kid, old.jwk.kid]);

    // Not before: at the last moment it is still published and still a valid logout hint.
    expect(await server.reloadSigningKeys(stoppedSigning + retentionMs)).toBe(false);
    expect(await publishedKids(server.issuer)).toEqual([rotated.jwk.kid, old.jwk.kid]);
    await expectHintAccepted(server, tokens.id_token!);
    expect(removeAgedOutKeys(server.config.keysDir, { now: stoppedSigning + retentionMs, retentionMs })).toEqual([]);

    // One millisecond later it is gone from the JWKS and from Latchkey's own verification.
    expect(await server.reloadSigningKeys(stoppedSigning + retentionMs + 1)).toBe(true);
    expect(await publishedKids(server.issuer)).toEqual([rotated.jwk.kid]);
    await expectHintRefused(server, tokens.id_token!);

    // Its private key stays on disk (unused) until a key command that writes removes it.
    expect(readSigningKeys(server.config.keysDir).map((key) => key.jwk.kid)).toContain(old.jwk.kid);
    const removed = removeAgedOutKeys(server.config.keysDir, { now: stoppedSigning + retentionMs + 1, retentionMs });
    expect(removed).toEqual([expect.objectContaining({ kid: old.jwk.kid, reason: 'expired' })]);
    expect(readSigningKeys(server.config.keysDir).map((key) => key.jwk.kid)).toEqual([rotated.jwk.kid]);
    expect(await server.reloadSigningKeys(stoppedSigning + retentionMs + 1)).toBe(false);
  });

  it.each([
    ['ID_TOKEN_TTL', { idTokenTtlSeconds: 86400, accessTokenTtlSeconds: 300, sessionTtlSeconds: 3600 }, 86400],
    ['ACCESS_TOKEN_TTL', { idTokenTtlSeconds: 600, accessTokenTtlSeconds: 90000, sessionTtlSeconds: 3600 }, 90000],
    ['SESSION_TTL', { idTokenTtlSeconds: 600, accessTokenTtlSeconds: 300, sessionTtlSeconds: 7200 }, 7200],
    ['the 120-second logout tokens', { idTokenTtlSeconds: 60, accessTokenTtlSeconds: 60, sessionTtlSeconds: 60 }, 120],
  ])('counts %s when it is the longest', (_name, ttls, longestSeconds) => {
    expect(signingKeyRetentionMs({ ...ttls, keysReloadIntervalSeconds: 30 })).toBe((30 + longestSeconds) * 1000);
  });
});

describe('a KEYS_DIR whose keys were all retired by hand', () => {
  it('gets a new key at start, under the next sequence number (a retired key\'s file name is never reused)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-keys-'));
    try {
      const [first] = await ensureSigningKey(dir);
      const record = { sequence: 1, kid: first.jwk.kid, alg: 'RS256', createdAt: first.createdAt, activatesAt: first.activatesAt, retiredAt: Date.now(), reason: 'retired' };
      fs.writeFileSync(path.join(dir, 'signing-key-000001.json'), JSON.stringify(record));
      const keys = await ensureSigningKey(dir);
      expect(keys.map((key) => key.sequence)).toEqual([2]);
      expect(readRetiredKeys(dir)).toEqual([record]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Waits for a process to print what it prints when it is done (not for time to pass). */
async function waitFor(isDone: () => boolean, output: () => string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!isDone()) {
    if (Date.now() > deadline) throw new Error(`not reached in time:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a running server process', () => {
  let dir: string;
  let database: TestDatabase;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-keys-'));
    database = await createTestDatabase(dir);
  });
  afterAll(async () => {
    await database?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('with WORKERS=2 drops a key retired by the CLI from every worker on SIGHUP, long before KEYS_RELOAD_INTERVAL', async () => {
    const env = { DATABASE_URL: database.url, KEYS_DIR: path.join(dir, 'keys'), WORKERS: '2', KEYS_RELOAD_INTERVAL: '86400' };
    const instance = await spawnLatchkey(env);
    const linesSoFar = (pattern: RegExp) => (instance.output().match(pattern) ?? []).length;
    try {
      await waitFor(() => linesSoFar(/serving .*\n/g) === 2, instance.output);
      const issuer = `http://localhost:${instance.port}`;
      const [old] = readSigningKeys(env.KEYS_DIR);
      const cli = (...argv: string[]) => runCliCapturing(['keys', ...argv], env);
      const fresh = JSON.parse((await cli('rotate', '--now', '--json')).stdout).kid as string;
      const retired = await cli('retire', `--kid=${old.jwk.kid}`);
      expect(retired.stderr).toBe('');
      expect(retired.code).toBe(0);

      // The timer would take a day; SIGHUP reaches both workers through the primary.
      expect(await publishedKids(issuer)).toEqual([old.jwk.kid]);
      instance.child.kill('SIGHUP');
      await waitFor(() => linesSoFar(/SIGHUP received, signing keys reloaded/g) === 2, instance.output);
      // Round-robin over the workers: every answer comes from a reloaded one.
      for (let i = 0; i < 6; i++) expect(await publishedKids(issuer)).toEqual([fresh]);
    } finally {
      instance.child.kill('SIGTERM');
      expect(await instance.exited).toBe(0);
    }
  }, 60_000);
});
