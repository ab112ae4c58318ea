import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import argon2 from 'argon2';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateDatabase, openDatabase } from '../src/database.js';
import { createBrowser, textOf } from './support/browser.js';
import { runCliCapturing } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { createClient, password } from './support/fixtures.js';
import { authorize, discoverRp, redirectUri, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';
import { down as dropSkeletons } from '../migrations/0008_email_skeletons.js';

// Look-alikes written as escapes: in the source they would look exactly like what they imitate.
const cyrillic = { a: '\u0430', c: '\u0441', e: '\u0435', o: '\u043e', p: '\u0440' };
const greek = { o: '\u03bf', p: '\u03c1', a: '\u03b1' };

let server: TestServer;
let rp: oidc.Configuration;

beforeAll(async () => {
  server = await startTestServer({ loginThrottle: { pairMaxFailures: 2, lockSeconds: 60, lockMaxSeconds: 3600, accountMaxFailuresPerHour: 1000, ipMaxFailuresPerDay: 1000, ipMaxAttemptsPerMinute: 1000, accountMaxAttemptsPerMinute: 1000 } });
  const client = await createClient(server.services, { skipConsent: true });
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(() => server.close());

const cli = (...argv: string[]) => runCliCapturing(argv, { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir });
const emails = async () => (JSON.parse((await cli('users', 'list', '--json')).stdout) as Array<{ email: string }>).map((user) => user.email);

describe('one account per email, however it is spelled', () => {
  beforeAll(async () => {
    for (const email of ['ada@example.com', 'ace@example.com', 'opa@example.com']) {
      expect((await cli('users', 'create', '--email', email, '--password', password)).code).toBe(0);
    }
  });

  it.each([
    ['the full-width form of an existing email', '\uff41\uff44\uff41@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.\uff43\uff4f\uff4d', 'a user with email ada@example.com already exists'],
    ['a mathematical bold letter for a plain one of an existing email', '\u{1d41a}da@example.com', 'a user with email ada@example.com already exists'],
    ['an ideographic full stop for a dot of an existing email', 'ada@example\u3002com', 'a user with email ada@example.com already exists'],
    ['a zero-width space', 'ada\u200b@example.com', 'it contains the invisible character U+200B'],
    ['a zero-width joiner', 'a\u200dda@example.com', 'it contains the invisible character U+200D'],
    ['a zero-width non-joiner', 'ada@exa\u200cmple.com', 'it contains the invisible character U+200C'],
    ['a byte order mark', 'ad\ufeffa@example.com', 'it contains the invisible character U+FEFF'],
    ['a soft hyphen', 'ada@exam\u00adple.com', 'it contains the invisible character U+00AD'],
    ['a Hangul filler', 'ada\u3164@example.com', 'it contains the invisible character U+1160'],
    ['a right-to-left override', 'ada\u202e@example.com', 'it contains the invisible character U+202E'],
    ['an escape sequence', 'ada\x1b[8m@example.com', 'it contains the control character U+001B'],
    ['a trailing dot', 'ada@example.com.', 'its domain ends with a dot'],
    ['an empty domain label', 'ada@example..com', 'its domain has an empty label'],
    ['a Cyrillic a in the local part', `${cyrillic.a}da@example.com`, 'its local part mixes Latin and Cyrillic letters'],
    ['a Cyrillic e in the domain', `ada@${cyrillic.e}xample.com`, `its domain label "${cyrillic.e}xample" mixes Latin and Cyrillic letters`],
    ['a Greek o in the top-level domain', `ada@example.c${greek.o}m`, `its domain label "c${greek.o}m" mixes Latin and Greek letters`],
    ['an all-Cyrillic local part that looks like an existing email', `${cyrillic.a}${cyrillic.c}${cyrillic.e}@example.com`, 'looks like the email of the existing user ace@example.com'],
    ['an all-Greek local part that looks like an existing email', `${greek.o}${greek.p}${greek.a}@example.com`, 'looks like the email of the existing user opa@example.com'],
  ])('refuses a new account whose email has %s, with one line', async (_what, email, reason) => {
    const before = await emails();
    const result = await cli('users', 'create', '--email', email, '--password', password);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(reason);
    expect(await emails()).toEqual(before);
  });

  it('stores the plain form of a full-width email', async () => {
    const created = await cli('users', 'create', '--email', '\uff22\uff4f\uff42@example.com', '--password', password, '--json');
    expect(JSON.parse(created.stdout).email).toBe('bob@example.com');
  });

  it('signs the full-width spelling in as the real account at the login form, and a look-alike not at all', async () => {
    const user = (await server.services.accounts.findByEmail('ada@example.com'))!;
    const signedIn = await signIn(rp, createBrowser(), { email: '\uff21\uff24\uff21@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.\uff43\uff4f\uff4d', password });
    expect(signedIn.tokens.claims()!.sub).toBe(user.id);

    const lookAlike = await authorize(rp, createBrowser(), { email: `${cyrillic.a}da@example.com`, password });
    expect(lookAlike.page.url.startsWith(redirectUri)).toBe(false);
    expect(textOf(lookAlike.page.html, '.error')).toBe('Incorrect email or password.');
  });

  it('counts failed sign-ins under every spelling of an email against the same account', async () => {
    await cli('users', 'create', '--email', 'grace@example.com', '--password', password);
    const fullWidth = '\uff47\uff52\uff41\uff43\uff45@example.com';
    for (const wrong of ['wrong password one', 'wrong password two']) await authorize(rp, createBrowser(), { email: fullWidth, password: wrong });
    // The pair (this account, this IP) is locked now: the plain spelling with the right password is refused too.
    const locked = await authorize(rp, createBrowser(), { email: 'grace@example.com', password });
    expect(locked.page.status).toBe(429);
    await server.services.audit.settled();
    const events = JSON.parse((await cli('events', '--email', fullWidth, '--json')).stdout) as Array<{ type: string; email: string }>;
    expect(events.map((event) => [event.type, event.email])).toEqual(expect.arrayContaining([
      ['sign_in.failure', 'grace@example.com'], ['sign_in.throttled', 'grace@example.com'],
    ]));
  });

  it('creates only one of two look-alikes created at the same moment', async () => {
    const attempts = await Promise.allSettled([
      server.services.accounts.create({ email: 'cope@example.com', password }),
      server.services.accounts.create({ email: `${cyrillic.c}${cyrillic.o}${cyrillic.p}${cyrillic.e}@example.com`, password }),
    ]);
    expect(attempts.filter((attempt) => attempt.status === 'fulfilled')).toHaveLength(1);
    const [failure] = attempts.filter((attempt) => attempt.status === 'rejected') as PromiseRejectedResult[];
    expect(failure.reason.message).toMatch(/looks like the email of the existing user (cope|\u0441\u043e\u0440\u0435)@example\.com/);
    const both = ['cope@example.com', `${cyrillic.c}${cyrillic.o}${cyrillic.p}${cyrillic.e}@example.com`];
    expect((await emails()).filter((email) => both.includes(email))).toHaveLength(1);
  });
});

describe('accounts made before look-alikes were refused (migration 0008)', () => {
  let dir: string;
  let database: TestDatabase;
  let upgraded: TestServer;

  beforeAll(async () => {
    // A database as an older Latchkey left it: emails in NFC and lower case only, look-alikes side by side.
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-skeletons-'));
    database = await createTestDatabase(dir);
    await migrateDatabase(database.url);
    const opened = openDatabase(database.url);
    const { knex } = opened;
    try {
      await dropSkeletons(knex);
      await knex('knex_migrations').where({ name: '0008_email_skeletons.ts' }).delete();
      const passwordHash = await argon2.hash(password);
      const legacy = (id: string, email: string, createdAt: number) => ({
        id, email, password_hash: passwordHash, email_verified: true, is_active: true, is_admin: false, created_at: createdAt, updated_at: createdAt,
      });
      await knex('users').insert([
        legacy('full-width', '\uff4c\uff49\uff4e@example.com', 1),
        legacy('ace-latin', 'ace@example.com', 2),
        legacy('ace-cyrillic', `${cyrillic.a}${cyrillic.c}${cyrillic.e}@example.com`, 3),
        legacy('kay-latin', 'kay@example.com', 4),
        legacy('kay-full-width', '\uff4b\uff41\uff59@example.com', 5),
        legacy('pop-latin', 'pop@example.com', 6),
      ]);
    } finally {
      await opened.destroy();
    }
    upgraded = await startTestServer({ databaseUrl: database.url });
  });
  afterAll(async () => {
    await upgraded.close();
    await database.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const upgradedCli = (...argv: string[]) => runCliCapturing(argv, { DATABASE_URL: database.url, KEYS_DIR: upgraded.config.keysDir });

  it('keeps every account, rewrites an email into its plain form where that is free, and refuses new look-alikes', async () => {
    const listed = JSON.parse((await upgradedCli('users', 'list', '--json')).stdout) as Array<{ id: string; email: string }>;
    expect(Object.fromEntries(listed.map((user) => [user.id, user.email]))).toEqual({
      'full-width': 'lin@example.com',
      'ace-latin': 'ace@example.com',
      'ace-cyrillic': `${cyrillic.a}${cyrillic.c}${cyrillic.e}@example.com`,
      'kay-latin': 'kay@example.com',
      'kay-full-width': '\uff4b\uff41\uff59@example.com',
      'pop-latin': 'pop@example.com',
    });

    const client = await createClient(upgraded.services, { skipConsent: true });
    const upgradedRp = await discoverRp(upgraded.issuer, client.clientId, client.clientSecret!);
    for (const [email, id] of [['\uff4c\uff49\uff4e@example.com', 'full-width'], ['lin@example.com', 'full-width'], [`${cyrillic.a}${cyrillic.c}${cyrillic.e}@example.com`, 'ace-cyrillic']]) {
      expect((await signIn(upgradedRp, createBrowser(), { email, password })).tokens.claims()!.sub).toBe(id);
    }

    const lookAlike = `${cyrillic.p}${cyrillic.o}${cyrillic.p}@example.com`;
    expect(await upgradedCli('users', 'create', '--email', lookAlike, '--password', password))
      .toEqual({ code: 1, stdout: '', stderr: `latchkey: "${lookAlike}" looks like the email of the existing user pop@example.com` });
  });
});
