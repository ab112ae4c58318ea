import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, migrateDatabase, type Database } from '../src/database.js';
import { createOidcPayloadStore, type OidcPayloadStore } from '../src/store/oidc-payloads.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

// The store contract: the same behaviour on SQLite (npm test) and PostgreSQL (npm run test:postgres).
let dir: string;
let testDatabase: TestDatabase;
let database: Database;
let payloads: OidcPayloadStore;
const now = 1_800_000_000_000;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-store-'));
  testDatabase = await createTestDatabase(dir);
  await migrateDatabase(testDatabase.url);
  database = openDatabase(testDatabase.url);
  payloads = createOidcPayloadStore(database);
});
afterAll(async () => {
  await database.destroy();
  await testDatabase.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const put = (model: string, id: string, extra: Partial<Parameters<OidcPayloadStore['upsert']>[0]> = {}) =>
  payloads.upsert({ model, id, payload: { jti: id, kind: model }, expiresAt: now + 60_000, ...extra });

describe('oidc payload store', () => {
  it('finds by id, uid and user code, and hides expired rows', async () => {
    await put('Session', 's1', { uid: 'u1' });
    await put('DeviceCode', 'd1', { userCode: 'ABCD' });
    await put('AccessToken', 'old', { expiresAt: now - 1 });
    expect((await payloads.find('Session', 's1', now))?.payload).toEqual({ jti: 's1', kind: 'Session' });
    expect((await payloads.findByUid('Session', 'u1', now))?.payload.jti).toBe('s1');
    expect((await payloads.findByUserCode('DeviceCode', 'ABCD', now))?.payload.jti).toBe('d1');
    expect(await payloads.find('AccessToken', 'old', now)).toBeUndefined();
    expect(await payloads.find('Grant', 's1', now)).toBeUndefined();
  });

  it('answers each of many lookups made at the same moment with its own row', async () => {
    // Ids with the characters JSON escapes, since SQLite looks keys asked for together up as one JSON array.
    const ids = ['plain', 'quote"d', 'back\\slash', 'new\nline', '[1,2]', 'ünï', '🔑', "o'clock"];
    for (const id of ids) await put('AccessToken', id, { uid: `uid-${id}` });
    await put('RefreshToken', 'plain');
    await put('AccessToken', 'stale', { expiresAt: now - 1 });
    const asked = [
      ...ids.map((id) => ['AccessToken', id]),
      ['RefreshToken', 'plain'],
      ['AccessToken', 'stale'],
      ['AccessToken', 'missing'],
      ['Grant', 'plain'],
      ['AccessToken', 'plain'],
    ];
    const together = await Promise.all([
      ...asked.map(([model, id]) => payloads.find(model, id, now)),
      ...ids.map((id) => payloads.findByUid('AccessToken', `uid-${id}`, now)),
    ]);
    const oneByOne = [];
    for (const [model, id] of asked) oneByOne.push(await payloads.find(model, id, now));
    for (const id of ids) oneByOne.push(await payloads.findByUid('AccessToken', `uid-${id}`, now));
    expect(together).toEqual(oneByOne);
    expect(together.map((found) => found?.payload ?? null)).toEqual([
      ...ids.map((id) => ({ jti: id, kind: 'AccessToken' })),
      { jti: 'plain', kind: 'RefreshToken' },
      null,
      null,
      null,
      { jti: 'plain', kind: 'AccessToken' },
      ...ids.map((id) => ({ jti: id, kind: 'AccessToken' })),
    ]);
  });

  it('finds a token with its grant and session in one statement, exactly as the separate lookups find them', async () => {
    const token = (id: string, payload: Record<string, unknown>, expiresAt = now + 60_000) =>
      payloads.upsert({ model: 'AccessToken', id, payload: { jti: id, ...payload }, grantId: payload.grantId as string | undefined, expiresAt });
    await put('Grant', 'rel-grant');
    await put('Grant', 'rel-old-grant', { expiresAt: now - 1 });
    await put('Session', 'rel-session', { uid: 'rel-uid' });
    await put('Session', 'rel-old-session', { uid: 'rel-old-uid', expiresAt: now - 1 });
    await payloads.consume('Grant', 'rel-grant', now - 5_000);
    await token('rel-both', { grantId: 'rel-grant', sessionUid: 'rel-uid' });
    await token('rel-none', {});
    await token('rel-gone', { grantId: 'rel-missing', sessionUid: 'rel-missing' });
    await token('rel-stale', { grantId: 'rel-old-grant', sessionUid: 'rel-old-uid' });
    await token('rel-expired', { grantId: 'rel-grant', sessionUid: 'rel-uid' }, now - 1);
    await payloads.consume('AccessToken', 'rel-both', now - 1_000);
    const ids = ['rel-both', 'rel-none', 'rel-gone', 'rel-stale', 'rel-expired', 'rel-absent', 'rel-grant'];
    const separately = async (id: string) => {
      const found = await payloads.find('AccessToken', id, now);
      if (!found) return undefined;
      const { grantId, sessionUid } = found.payload as { grantId?: string; sessionUid?: string };
      return {
        token: found,
        grant: grantId === undefined ? undefined : await payloads.find('Grant', grantId, now),
        session: sessionUid === undefined ? undefined : await payloads.findByUid('Session', sessionUid, now),
      };
    };
    const expected = await Promise.all(ids.map(separately));
    expect(expected[0]).toMatchObject({ token: { consumedAt: now - 1_000 }, grant: { consumedAt: now - 5_000 }, session: { payload: { jti: 'rel-session' } } });
    expect(expected.slice(4).every((found) => found === undefined)).toBe(true);
    // One at a time and all at once (SQLite looks up keys asked for in the same turn together).
    for (const id of ids) expect(await payloads.findWithRelated('AccessToken', id, now)).toEqual(expected[ids.indexOf(id)]);
    expect(await Promise.all(ids.map((id) => payloads.findWithRelated('AccessToken', id, now)))).toEqual(expected);
  });

  it('replaces a payload on upsert', async () => {
    await put('Grant', 'g-up');
    await payloads.upsert({ model: 'Grant', id: 'g-up', payload: { jti: 'g-up', version: 2 }, expiresAt: now + 60_000 });
    expect((await payloads.find('Grant', 'g-up', now))?.payload).toEqual({ jti: 'g-up', version: 2 });
  });

  it('lets exactly one of many parallel consumes win and reports the grant to the others', async () => {
    await put('RefreshToken', 'rt1', { grantId: 'g1' });
    const results = await Promise.all(Array.from({ length: 20 }, () => payloads.consume('RefreshToken', 'rt1', now)));
    expect(results.filter((result) => result.won)).toHaveLength(1);
    expect(results.filter((result) => !result.won)).toEqual(Array(19).fill({ won: false, grantId: 'g1' }));
    expect((await payloads.find('RefreshToken', 'rt1', now))?.consumedAt).toBe(now);
  });

  it('deletes a whole grant with its codes and tokens, and everything of an account', async () => {
    await put('Grant', 'g2', { accountId: 'acc' });
    await put('AuthorizationCode', 'c2', { grantId: 'g2', accountId: 'acc' });
    await put('AccessToken', 'a2', { grantId: 'g2', accountId: 'acc' });
    await put('AccessToken', 'other', { grantId: 'g3' });
    await payloads.deleteGrant('g2');
    for (const [model, id] of [['Grant', 'g2'], ['AuthorizationCode', 'c2'], ['AccessToken', 'a2']]) {
      expect(await payloads.find(model, id, now)).toBeUndefined();
    }
    expect(await payloads.find('AccessToken', 'other', now)).toBeDefined();

    await put('Session', 's-acc', { accountId: 'acc' });
    await put('RefreshToken', 'r-acc', { accountId: 'acc', grantId: 'g4' });
    expect(await payloads.listSessions('acc', now)).toEqual([{ id: 's-acc', payload: { jti: 's-acc', kind: 'Session' }, expiresAt: now + 60_000 }]);
    // Only the sessions come back: they name the clients to notify; grants and tokens simply go.
    expect(await payloads.deleteByAccountId('acc')).toEqual([{ id: 's-acc', payload: { jti: 's-acc', kind: 'Session' }, expiresAt: now + 60_000 }]);
    expect(await payloads.find('Session', 's-acc', now)).toBeUndefined();
  });

  it('purges expired rows in bounded batches and keeps live ones', async () => {
    for (let i = 0; i < 25; i++) await put('Interaction', `expired-${i}`, { expiresAt: now - 1000 });
    await put('Interaction', 'live');
    const batches: number[] = [];
    for (let deleted = -1; deleted !== 0;) {
      deleted = (await payloads.deleteExpired(now, 10)).count;
      batches.push(deleted);
    }
    expect(batches.every((size) => size <= 10)).toBe(true);
    expect(batches.length).toBeGreaterThanOrEqual(4);
    expect(batches.reduce((sum, size) => sum + size, 0)).toBeGreaterThanOrEqual(25);
    expect(await payloads.find('Interaction', 'live', now)).toBeDefined();
  });

  it('returns the expired sessions it purges, so their relying parties can be told', async () => {
    await put('Session', 'expired-session', { accountId: 'acc-x', expiresAt: now - 1000 });
    await put('Session', 'live-session', { accountId: 'acc-x' });
    expect(await payloads.listSessions('acc-x', now)).toEqual([expect.objectContaining({ id: 'live-session' })]);
    const { sessions } = await payloads.deleteExpired(now, 1000);
    expect(sessions).toEqual([{ id: 'expired-session', payload: { jti: 'expired-session', kind: 'Session' }, expiresAt: now - 1000 }]);
    expect(await payloads.listSessions('acc-x', now)).toHaveLength(1);
  });
});

describe('migrations', () => {
  it('lets several processes migrate a fresh database at the same time', async () => {
    const fresh = await createTestDatabase(fs.mkdtempSync(path.join(dir, 'fresh-')));
    try {
      await Promise.all(Array.from({ length: 3 }, () => migrateDatabase(fresh.url)));
      const connection = openDatabase(fresh.url);
      expect(await connection.knex('users').count({ count: '*' })).toEqual([{ count: 0 }]);
      await connection.destroy();
    } finally {
      await fresh.drop();
    }
  });

  it('recovers when processes that started together each left a row in knex\'s lock table', async () => {
    const fresh = await createTestDatabase(fs.mkdtempSync(path.join(dir, 'locks-')));
    try {
      // What two processes leave after both found knex's new lock table empty: its bookkeeping tables, two lock rows.
      const connection = openDatabase(fresh.url);
      await connection.knex.migrate.latest({ migrationSource: { getMigrations: async () => [], getMigrationName: String, getMigration: async () => { throw new Error('there are none'); } } });
      await connection.knex('knex_migrations_lock').insert({ is_locked: 0 });
      expect(await connection.knex('knex_migrations_lock').count({ count: '*' })).toEqual([{ count: 2 }]);
      await connection.destroy();
      await migrateDatabase(fresh.url, {}, 2000);
      const migrated = openDatabase(fresh.url);
      expect(await migrated.knex('users').count({ count: '*' })).toEqual([{ count: 0 }]);
      await migrated.destroy();
    } finally {
      await fresh.drop();
    }
  });
});

describe('connection settings', () => {
  it('runs SQLite in WAL mode with a busy timeout in a private file, and PostgreSQL with a bounded pool and connect timeout', async () => {
    if (testDatabase.url.startsWith('sqlite:')) {
      const file = testDatabase.url.slice('sqlite:'.length);
      for (const suffix of ['', '-wal']) expect(fs.statSync(`${file}${suffix}`).mode & 0o777).toBe(0o600);
      expect(await database.knex.raw('PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
      expect(await database.knex.raw('PRAGMA busy_timeout')).toEqual([{ timeout: 5000 }]);
      expect((database.knex.client as { pool: { max: number } }).pool.max).toBe(4);
      // The prepared statements' own connections get the same settings.
      expect(await database.statements.rows('PRAGMA journal_mode', [])).toEqual([{ journal_mode: 'wal' }]);
      expect(await database.statements.rows('PRAGMA busy_timeout', [])).toEqual([{ timeout: 5000 }]);
    } else {
      const { pool, config } = database.knex.client as { pool: { max: number }; config: { connection: Record<string, unknown> } };
      expect(pool.max).toBe(10);
      expect(config.connection).toMatchObject({ connectionTimeoutMillis: 5000, query_timeout: 30000 });
    }
  });
});

describe('prepared statements on the request path', () => {
  it('see rows other connections wrote since, and let every connection close with statements still prepared', async () => {
    const reader = openDatabase(testDatabase.url);
    const writer = openDatabase(testDatabase.url);
    try {
      const readerPayloads = createOidcPayloadStore(reader);
      const writerPayloads = createOidcPayloadStore(writer);
      await writerPayloads.upsert({ model: 'Session', id: 'fresh', payload: { version: 1 }, expiresAt: now + 60_000 });
      // Parallel finds prepare the statement on several pooled connections and leave them there.
      const first = await Promise.all(Array.from({ length: 8 }, () => readerPayloads.find('Session', 'fresh', now)));
      expect(first.map((found) => found?.payload.version)).toEqual(Array(8).fill(1));
      // A statement left inside its read transaction would keep showing version 1 on its connection.
      await writerPayloads.upsert({ model: 'Session', id: 'fresh', payload: { version: 2 }, expiresAt: now + 60_000 });
      const second = await Promise.all(Array.from({ length: 8 }, () => readerPayloads.find('Session', 'fresh', now)));
      expect(second.map((found) => found?.payload.version)).toEqual(Array(8).fill(2));
    } finally {
      await writer.destroy();
    }
    // SQLite refuses to close a connection with open statements (SQLITE_BUSY); knex's pool only reports that as an
    // event and leaves the connection open.
    const closeFailures: unknown[] = [];
    (reader.knex.client as { pool: { on(event: string, listener: (...args: unknown[]) => void): void } }).pool
      .on('destroyFail', (_eventId, _connection, error) => closeFailures.push(error));
    await reader.destroy();
    expect(closeFailures).toEqual([]);
  });

  it('let a database close while statements are still being asked for, finishing them first', async () => {
    const closing = openDatabase(testDatabase.url);
    const payloads = createOidcPayloadStore(closing);
    const closeFailures: unknown[] = [];
    (closing.knex.client as { pool: { on(event: string, listener: (...args: unknown[]) => void): void } }).pool
      .on('destroyFail', (_eventId, _connection, error) => closeFailures.push(error));
    const write = (version: number) => payloads.upsert({ model: 'Session', id: `closing-${version}`, payload: { version }, expiresAt: now + 60_000 });
    // Statements prepared on several connections, then more writes asked for as it closes.
    await Promise.all(Array.from({ length: 8 }, (_, version) => write(version)));
    const late = Promise.allSettled(Array.from({ length: 8 }, (_, version) => write(version + 8)));
    await closing.destroy();
    const settled = await late;
    expect(closeFailures).toEqual([]);
    // On SQLite every write asked for before destroy() runs, on the statements already prepared (on PostgreSQL
    // those still waiting for a connection when knex's pool closes are refused).
    if (testDatabase.url.startsWith('sqlite:')) expect(settled.map((result) => result.status)).toEqual(Array(8).fill('fulfilled'));
    const stored = createOidcPayloadStore(database);
    for (const [index, result] of settled.entries()) {
      const row = await stored.find('Session', `closing-${index + 8}`, now);
      expect(row?.payload.version).toBe(result.status === 'fulfilled' ? index + 8 : undefined);
    }
  });
});
