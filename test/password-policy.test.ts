import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import argon2 from 'argon2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emailSkeleton } from '../src/accounts/email.js';
import { createPasswordPolicy, maximumPasswordLength } from '../src/accounts/password-policy.js';
import { needsRehash, passwordHashOptions } from '../src/accounts/passwords.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { inEnglish } from '../src/i18n/catalogues.js';
import { createUserStore } from '../src/store/users.js';
import { createBrowser } from './support/browser.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { createClient, createUser } from './support/fixtures.js';
import { authorize, discoverRp, redirectUri } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';
import { runCliCapturing } from './support/cli.js';

/** The policy's reason in English (as the CLI says it), or undefined. */
const problemOf = async (minLength: number, password: string) => {
  const problem = await createPasswordPolicy({ minLength }).problem(password);
  return problem && inEnglish(problem);
};

describe('the password policy (NIST SP 800-63B)', () => {
  const policy = { problem: (password: string) => problemOf(8, password) };

  it('accepts long passphrases with no composition rules, up to the maximum', async () => {
    expect(await policy.problem('all lowercase words, no digits')).toBeUndefined();
    expect(await policy.problem('x'.repeat(64))).toBeUndefined();
    expect(await policy.problem('a'.repeat(maximumPasswordLength - 3) + ' ok')).toBeUndefined();
    expect(await policy.problem('y'.repeat(maximumPasswordLength + 1))).toBe(`the password must have at most ${maximumPasswordLength} characters`);
  });

  it('counts characters, not UTF-16 units', async () => {
    expect(await policy.problem('🔑'.repeat(8))).toBeUndefined();
    expect(await policy.problem('🔑'.repeat(7))).toBe('the password must have at least 8 characters');
    expect(await policy.problem('🔑'.repeat(maximumPasswordLength))).toBeUndefined();
  });

  it.each(['password1', 'PASSWORD1', 'Qwertyuiop', 'iloveyou1'])('refuses the common password %s, whatever its case', async (password) => {
    expect(await policy.problem(password)).toBe('the password is one of the most commonly used passwords; choose another');
  });

  it('takes its minimum length from PASSWORD_MIN_LENGTH, between 8 and 64', async () => {
    expect(loadConfig({}).passwordMinLength).toBe(8);
    expect(loadConfig({ PASSWORD_MIN_LENGTH: '12' }).passwordMinLength).toBe(12);
    for (const value of ['4', '65', 'twelve']) {
      expect(() => loadConfig({ PASSWORD_MIN_LENGTH: value })).toThrow(ConfigError);
    }
    expect(await problemOf(12, 'eleven chars')).toBeUndefined();
    expect(await problemOf(12, 'ten chars!')).toBe('the password must have at least 12 characters');
  });
});

describe('the CLI applies the policy', () => {
  let dir: string;
  let database: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-policy-'));
    database = await createTestDatabase(dir);
    env = { DATABASE_URL: database.url, KEYS_DIR: path.join(dir, 'keys'), PASSWORD_MIN_LENGTH: '10' };
  });
  afterAll(async () => {
    await database.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const cli = (...argv: string[]) => runCliCapturing(argv, env);

  it.each([
    [['users', 'create', '--email', 'p1@example.com', '--password', 'password123'], 'latchkey: the password is one of the most commonly used passwords; choose another'],
    [['users', 'create', '--email', 'p2@example.com', '--password', 'nine char'], 'latchkey: the password must have at least 10 characters'],
  ])('refuses %j with one line and exit code 1', async (argv, message) => {
    expect(await cli(...argv)).toEqual({ code: 1, stdout: '', stderr: message });
  });

  it('refuses a common password at set-password and keeps the old one', async () => {
    expect((await cli('users', 'create', '--email', 'p3@example.com', '--password', 'a fine passphrase')).code).toBe(0);
    expect(await cli('users', 'set-password', '--email', 'p3@example.com', '--password', 'Qwertyuiop123')).toEqual({
      code: 1, stdout: '', stderr: 'latchkey: the password is one of the most commonly used passwords; choose another',
    });
    expect((await cli('users', 'set-password', '--email', 'p3@example.com', '--password', 'another fine passphrase')).code).toBe(0);
  });
});

describe('password hash upgrades', () => {
  let server: TestServer;
  const weakOptions = { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 } as const;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  async function insertWeakUser(password: string) {
    const users = createUserStore(server.connection);
    const id = randomUUID();
    const email = `weak-${id}@example.com`;
    await users.insert({
      id, email, emailSkeleton: emailSkeleton(email), emailVerified: true, passwordHash: await argon2.hash(password, weakOptions), givenName: null, familyName: null, locale: null, zoneinfo: null,
      isActive: true, isAdmin: false, isSelfRegistered: false, createdAt: Date.now(), updatedAt: Date.now(),
    });
    return { users, id, email };
  }

  it('rehashes a password stored with weaker argon2 parameters at the next successful sign-in', async () => {
    const password = 'an old but good passphrase';
    const { users, id, email } = await insertWeakUser(password);
    const before = (await users.find(id))!.passwordHash!;
    expect(needsRehash(before)).toBe(true);

    const client = await createClient(server.services, { skipConsent: true });
    const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const failed = await authorize(rp, createBrowser(), { email, password: 'not the passphrase' });
    expect(failed.page.status).toBe(200);
    expect((await users.find(id))!.passwordHash).toBe(before);

    const signedIn = await authorize(rp, createBrowser(), { email, password });
    expect(signedIn.page.url.startsWith(redirectUri)).toBe(true);
    const after = (await users.find(id))!.passwordHash!;
    expect(after).not.toBe(before);
    expect(after).toContain(`m=${passwordHashOptions.memoryCost},p=${passwordHashOptions.parallelism},t=${passwordHashOptions.timeCost}`);
    expect(needsRehash(after)).toBe(false);
    expect(await argon2.verify(after, password)).toBe(true);
  });

  it('leaves a current hash alone', async () => {
    const user = await createUser(server.services);
    const authenticated = await server.services.accounts.authenticate(user.email, 'correct horse battery staple');
    expect(authenticated?.passwordHash).toBe(user.passwordHash);
    expect((await server.services.accounts.findByEmail(user.email))!.passwordHash).toBe(user.passwordHash);
  });
});
