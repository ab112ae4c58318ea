import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { runCliCapturing } from './support/cli.js';

const run = promisify(execFile);
let dir: string;
let env: Record<string, string>;

let database: TestDatabase;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-cli-'));
  database = await createTestDatabase(dir);
  env = { DATABASE_URL: database.url, KEYS_DIR: path.join(dir, 'keys') };
});
afterAll(async () => {
  await database.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const cli = (...argv: string[]) => runCliCapturing(argv, env);

async function cliJson(...argv: string[]) {
  const result = await cli(...argv, '--json');
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout);
}

describe('latchkey users', () => {
  it('creates, lists, disables, enables and re-passwords a user', async () => {
    const created = await cliJson('users', 'create', '--email', ' Alan@Example.COM ', '--password', 'a long enough password',
      '--given-name', 'Alan', '--family-name', 'Turing', '--admin');
    expect(created).toMatchObject({ email: 'alan@example.com', givenName: 'Alan', familyName: 'Turing', isAdmin: true, isActive: true });
    expect(JSON.stringify(created)).not.toContain('password');

    const listed = await cliJson('users', 'list');
    expect(listed).toEqual([expect.objectContaining({ email: 'alan@example.com', id: created.id })]);
    expect((await cli('users', 'list')).stdout).toMatch(/alan@example\.com\s+\S+\s+yes\s+yes\s+Alan Turing/);

    expect(await cliJson('users', 'disable', '--email', 'ALAN@example.com')).toMatchObject({ isActive: false });
    expect(await cliJson('users', 'enable', '--email', 'alan@example.com')).toMatchObject({ isActive: true });
    const changed = await cli('users', 'set-password', '--email', 'alan@example.com', '--password', 'another long password');
    expect(changed).toMatchObject({ code: 0 });
    expect(changed.stdout).toContain('password changed for alan@example.com');
  });

  it('refuses a duplicate email, case-insensitively, without touching the first user', async () => {
    await cliJson('users', 'create', '--email', 'dup@example.com', '--password', 'first password 123');
    const second = await cli('users', 'create', '--email', 'DUP@example.com', '--password', 'second password 123');
    expect(second).toEqual({ code: 1, stdout: '', stderr: 'latchkey: a user with email dup@example.com already exists' });
    expect((await cliJson('users', 'list')).filter((u: { email: string }) => u.email === 'dup@example.com')).toHaveLength(1);
  });

  it.each([
    [['users', 'create', '--email', 'x@example.com'], 'latchkey: --password-stdin (or --password) is required'],
    [['users', 'create', '--email', 'not-an-email', '--password', 'long enough pw'], 'latchkey: "not-an-email" is not a valid email address'],
    [['users', 'create', '--email', 'short@example.com', '--password', 'short'], 'latchkey: the password must have at least 8 characters'],
    [['users', 'disable', '--email', 'ghost@example.com'], 'latchkey: no user with email ghost@example.com'],
    [['users', 'create', '--email', 'a@example.com', '--password', 'long enough pw', '--bogus'], "latchkey: Unknown option '--bogus'"],
  ])('refuses %j with a one-line message and exit code 1', async (argv, message) => {
    const result = await cli(...argv);
    expect(result.code).toBe(1);
    expect(result.stderr.startsWith(message)).toBe(true);
    expect(result.stderr.split('\n')).toHaveLength(1);
  });

  it('answers an unknown command with exit code 2', async () => {
    expect(await cli('users', 'explode')).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command "users explode"') });
    expect(await cli()).toMatchObject({ code: 2, stdout: expect.stringContaining('usage: latchkey') });
  });
});

describe('latchkey clients', () => {
  it('creates a confidential client with a generated secret shown once', async () => {
    const created = await cliJson('clients', 'create', '--client-id', 'web', '--redirect-uri', 'https://app.example.com/cb',
      '--redirect-uri', 'http://localhost:8080/cb', '--post-logout-redirect-uri', 'https://app.example.com/', '--name', 'Web App', '--skip-consent');
    expect(created).toMatchObject({
      clientId: 'web', name: 'Web App', isPublic: false, skipConsent: true,
      redirectUris: ['https://app.example.com/cb', 'http://localhost:8080/cb'],
      grantTypes: ['authorization_code', 'refresh_token'],
    });
    expect(created.clientSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const listed = await cliJson('clients', 'list');
    expect(JSON.stringify(listed)).not.toContain(created.clientSecret);
  });

  it('creates public and service clients', async () => {
    const spa = await cliJson('clients', 'create', '--client-id', 'spa', '--public', '--redirect-uri', 'https://spa.example.com/cb');
    expect(spa).toMatchObject({ isPublic: true });
    expect(spa.clientSecret).toBeUndefined();
    const worker = await cliJson('clients', 'create', '--client-id', 'worker', '--grant-types', 'client_credentials',
      '--client-secret', 'a-given-secret-that-is-long-enough-1234');
    expect(worker).toMatchObject({ grantTypes: ['client_credentials'] });
    expect(worker.clientSecret).toBeUndefined();
  });

  it('deletes a client', async () => {
    await cliJson('clients', 'create', '--client-id', 'gone', '--redirect-uri', 'https://gone.example.com/cb');
    expect(await cliJson('clients', 'delete', '--client-id', 'gone')).toEqual({ clientId: 'gone', deleted: true });
    expect((await cliJson('clients', 'list')).map((c: { clientId: string }) => c.clientId)).not.toContain('gone');
    expect(await cli('clients', 'delete', '--client-id', 'gone')).toMatchObject({ code: 1, stderr: 'latchkey: no client with id gone' });
  });

  it.each([
    [['--client-id', 'a', '--redirect-uri', 'http://app.example.com/cb'], 'must use https'],
    [['--client-id', 'a', '--redirect-uri', 'https://app.example.com/cb#x'], 'must not contain a fragment'],
    [['--client-id', 'a', '--redirect-uri', 'not a uri'], 'is not an absolute URI'],
    [['--client-id', 'a', '--redirect-uri', 'https://user:pw@app.example.com/cb'], 'must not contain credentials'],
    [['--client-id', 'a'], 'needs at least one --redirect-uri'],
    [['--client-id', 'a', '--public', '--client-secret', 'x'], '--public and --client-secret exclude each other'],
    [['--client-id', 'a', '--grant-types', 'password', '--redirect-uri', 'https://a.example.com/cb'], 'unsupported grant type "password"'],
    [['--client-id', 'a', '--grant-types', 'implicit', '--redirect-uri', 'https://a.example.com/cb'], 'unsupported grant type "implicit"'],
    [['--client-id', 'a', '--client-secret', 'short', '--redirect-uri', 'https://a.example.com/cb'], 'at least 32 characters'],
    [['--client-id', 'web', '--redirect-uri', 'https://a.example.com/cb'], 'a client with id web already exists'],
  ])('refuses clients create %j', async (argv, message) => {
    const result = await cli('clients', 'create', ...argv);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
  });
});

describe('latchkey apis', () => {
  it('registers an API, updates its scopes and lists it', async () => {
    expect(await cliJson('apis', 'create', '--audience', 'https://api.example.com', '--scopes', 'read write'))
      .toMatchObject({ audience: 'https://api.example.com', scopes: ['read', 'write'] });
    await cliJson('apis', 'create', '--audience', 'https://api.example.com', '--scopes', 'read');
    expect(await cliJson('apis', 'list')).toEqual([expect.objectContaining({ audience: 'https://api.example.com', scopes: ['read'] })]);
  });

  it.each([
    [['--audience', 'api'], 'must be an absolute URI'],
    [['--audience', 'https://api.example.com#x'], 'must not contain a fragment'],
    [['--audience', 'https://api.example.com', '--scopes', 'openid'], 'is an OpenID Connect scope'],
    [['--scopes', 'read'], '--audience is required'],
  ])('refuses apis create %j', async (argv, message) => {
    const result = await cli('apis', 'create', ...argv);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
  });
});

describe('latchkey keys', () => {
  it('publishes a rotated key at once and signs with it after the activation delay, or at once with --now', async () => {
    const first = await cliJson('keys', 'rotate');
    const second = await cliJson('keys', 'rotate');
    expect(Date.parse(second.activatesAt) - Date.parse(second.createdAt)).toBe(60_000);
    let listed = await cliJson('keys', 'list');
    expect(listed.map((k: { kid: string }) => k.kid)).toEqual([second.kid, first.kid]);
    // The only other key is the oldest, so it signs until the new one activates.
    expect(listed.map((k: { status: string }) => k.status)).toEqual(['pending', 'signing']);

    const third = await cliJson('keys', 'rotate', '--now');
    listed = await cliJson('keys', 'list');
    expect(listed.map((k: { kid: string }) => k.kid)).toEqual([third.kid, second.kid, first.kid]);
    // The newest active key wins; the skipped pending key will never sign, but still verifies.
    expect(listed.map((k: { status: string }) => k.status)).toEqual(['signing', 'verify only', 'verify only']);

    const files = fs.readdirSync(env.KEYS_DIR).filter((name) => name.startsWith('signing-key-'));
    expect(files).toHaveLength(3);
    for (const file of files) expect(fs.statSync(path.join(env.KEYS_DIR, file)).mode & 0o777).toBe(0o600);
  });
});

describe('the latchkey command', () => {
  it('runs as a real process with the environment and exits non-zero on bad configuration', async () => {
    const bin = path.resolve('bin/latchkey.js');
    const ok = await run(process.execPath, [bin, 'users', 'list', '--json'], { env: { ...process.env, ...env } });
    expect(JSON.parse(ok.stdout).length).toBeGreaterThan(0);
    const bad = await run(process.execPath, [bin, 'users', 'list'], { env: { ...process.env, ...env, ACCESS_TOKEN_TTL: 'soon' } })
      .catch((error: { code: number; stderr: string }) => error);
    expect(bad).toMatchObject({ code: 1 });
    expect((bad as { stderr: string }).stderr).toContain('ACCESS_TOKEN_TTL must be a whole number');
  });
});
