import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openServices } from '../src/services.js';
import { openDatabase } from '../src/database.js';
import { createClientStore } from '../src/store/clients.js';
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
    [['--audience', 'api'], 'is not an absolute URI'],
    [['--audience', 'https://api.example.com#x'], 'must not contain a fragment'],
    [['--audience', 'https://api.example.com', '--scopes', 'openid'], 'is an OpenID Connect scope'],
    [['--scopes', 'read'], '--audience is required'],
  ])('refuses apis create %j', async (argv, message) => {
    const result = await cli('apis', 'create', ...argv);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
  });
});

describe('latchkey clients --api (which APIs and scopes a client may have)', () => {
  beforeAll(async () => {
    await cliJson('apis', 'create', '--audience', 'https://orders.example.com:8443', '--scopes', 'read write api:admin');
    await cliJson('apis', 'create', '--audience', 'urn:example:billing', '--scopes', 'read charge');
  });

  it('gives a client APIs with some, or none, of their scopes; audiences and scopes may hold colons', async () => {
    const created = await cliJson('clients', 'create', '--client-id', 'orders-worker', '--grant-types', 'client_credentials',
      '--api', 'https://orders.example.com:8443:read,api:admin', '--api', 'urn:example:billing');
    expect(created.apis).toEqual([
      { audience: 'https://orders.example.com:8443', scopes: ['read', 'api:admin'] },
      { audience: 'urn:example:billing', scopes: [] },
    ]);
    expect((await cli('clients', 'list')).stdout).toMatch(/orders-worker\s+confidential\s+client_credentials\s+https:\/\/orders\.example\.com:8443:read,api:admin urn:example:billing/);
  });

  it('replaces the APIs, the name and the consent setting with clients update, and removes every API with --no-apis', async () => {
    await cliJson('clients', 'create', '--client-id', 'shop', '--redirect-uri', 'https://shop.example.com/cb', '--api', 'urn:example:billing:read');
    expect(await cliJson('clients', 'update', '--client-id', 'shop', '--api', 'https://orders.example.com:8443:write', '--name', 'Shop',
      '--skip-consent', 'true')).toMatchObject({ name: 'Shop', skipConsent: true, apis: [{ audience: 'https://orders.example.com:8443', scopes: ['write'] }] });
    expect(await cliJson('clients', 'update', '--client-id', 'shop', '--skip-consent', 'false'))
      .toMatchObject({ name: 'Shop', skipConsent: false, apis: [{ audience: 'https://orders.example.com:8443', scopes: ['write'] }] });
    expect((await cliJson('clients', 'update', '--client-id', 'shop', '--no-apis')).apis).toEqual([]);
    const events = await cliJson('events', '--limit', '3');
    expect(events.at(-1)).toMatchObject({ type: 'client.updated', clientId: 'shop', details: { apis: 'none' } });
  });

  it.each([
    [['create', '--client-id', 'w1', '--grant-types', 'client_credentials', '--api', 'https://unknown.example.com'], '--api https://unknown.example.com: no registered API matches'],
    [['create', '--client-id', 'w1', '--grant-types', 'client_credentials', '--api', 'urn:example:billing:refund'], 'API urn:example:billing has no scope refund (its scopes: read charge)'],
    [['create', '--client-id', 'w1', '--grant-types', 'client_credentials', '--api', 'urn:example:billing', '--api', 'urn:example:billing:read'], 'API urn:example:billing is given twice'],
    [['update', '--client-id', 'ghost', '--name', 'x'], 'no client with id ghost'],
    [['update', '--client-id', 'orders-worker'], 'nothing to change'],
    [['update', '--client-id', 'orders-worker', '--api', 'urn:example:billing', '--no-apis'], '--api and --no-apis exclude each other'],
    [['update', '--client-id', 'orders-worker', '--skip-consent', 'yes'], '--skip-consent must be true or false'],
  ])('refuses clients %j', async (argv, message) => {
    const result = await cli('clients', ...argv);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
  });

  it('refuses a client id shaped like a UUID (a user id), in any letter case', async () => {
    for (const clientId of ['0b6f0c3e-9a4b-4c47-8f3e-2d1c5b7a9e10', '0B6F0C3E-9A4B-4C47-8F3E-2D1C5B7A9E10']) {
      const result = await cli('clients', 'create', '--client-id', clientId, '--grant-types', 'client_credentials');
      expect(result).toMatchObject({ code: 1, stderr: expect.stringContaining('client id must not be shaped like a UUID') });
    }
  });

  it('gives no API to a UUID-shaped client registered before ids were checked, but lets it be renamed', async () => {
    const legacyId = '5d9f2b64-1c0e-4e8a-9b7d-3f6a2c8e1d40';
    const database = openDatabase(loadConfig(env).databaseUrl);
    try {
      // Written with the store, as an older Latchkey did; the registry would refuse the id.
      await createClientStore(database).insert({
        clientId: legacyId, clientSecret: 'a-legacy-secret-that-is-long-enough-123', name: null, redirectUris: [], postLogoutRedirectUris: [],
        grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'client_secret_basic', isFirstParty: false,
        backchannelLogoutUri: null, backchannelLogoutSessionRequired: true, requireMfa: false, createdAt: Date.now(),
      });
    } finally {
      await database.destroy();
    }
    const refused = await cli('clients', 'update', '--client-id', legacyId, '--api', 'urn:example:billing:read');
    expect(refused).toMatchObject({ code: 1, stderr: expect.stringContaining('has an id shaped like a UUID') });
    expect(await cliJson('clients', 'update', '--client-id', legacyId, '--name', 'Legacy')).toMatchObject({ name: 'Legacy', apis: [] });
  });
});

describe('latchkey clients create --client-secret-stdin', () => {
  const secretOf = async (clientId: string) => {
    const services = await openServices(loadConfig(env));
    try {
      return (await services.clients.find(clientId))?.clientSecret;
    } finally {
      await services.close();
    }
  };

  it('reads the secret from the first line of standard input and never prints it', async () => {
    const secret = 'a-secret-read-from-standard-input-0123456789';
    const result = await runCliCapturing(['clients', 'create', '--client-id', 'piped', '--redirect-uri', 'https://piped.example.com/cb',
      '--client-secret-stdin', '--json'], env, undefined, `${secret}\r\nsecond line is ignored\n`);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).not.toContain(secret);
    expect(JSON.parse(result.stdout).clientSecret).toBeUndefined();
    expect(await secretOf('piped')).toBe(secret);
  });

  it('runs as a real process: the secret arrives through a pipe and is in no argument the process was started with', async () => {
    const secret = 'a-secret-that-only-the-pipe-carries-9876543210';
    const child = spawn(process.execPath, [path.resolve('bin/latchkey.js'), 'clients', 'create', '--client-id', 'piped-process',
      '--redirect-uri', 'https://piped.example.com/cb', '--client-secret-stdin'], { env: { ...process.env, ...env } });
    // What `ps` and every user of the host can read while the command runs.
    const cmdline = fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
    expect(cmdline).toContain('--client-secret-stdin');
    expect(cmdline).not.toContain(secret);
    child.stdin.end(`${secret}\n`);
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    expect(await new Promise((resolve) => child.on('close', resolve))).toBe(0);
    expect(output).toContain('created confidential client piped-process');
    expect(output).not.toContain(secret);
    expect(await secretOf('piped-process')).toBe(secret);
  });

  it.each([
    [['--client-secret-stdin'], '', 'standard input held no client-secret'],
    [['--client-secret-stdin'], 'short\n', 'at least 32 characters'],
    [['--client-secret-stdin', '--client-secret', 'a-given-secret-that-is-long-enough-1234'], 'ignored', '--client-secret and --client-secret-stdin exclude each other'],
    [['--client-secret-stdin', '--public'], 'ignored', '--public and --client-secret-stdin exclude each other'],
  ])('refuses %j with standard input %j', async (options, stdin, message) => {
    const result = await runCliCapturing(['clients', 'create', '--client-id', 'bad-stdin', '--redirect-uri', 'https://x.example.com/cb', ...options], env, undefined, stdin);
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
