import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { openDatabase } from '../../src/database.js';

export type TestDatabase = { url: string; drop(): Promise<void> };

/** `serverUrl` with its path replaced by `/name`: the same server, user and options, another database. */
function withDatabase(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.href;
}

/**
 * SQLite in the test's temp dir, or — when TEST_DATABASE_URL points at a PostgreSQL server — a fresh database
 * created on that server for this test and dropped afterwards. Fails loudly if PostgreSQL cannot be reached.
 * CREATE and DROP DATABASE run on the `postgres` maintenance database, which every PostgreSQL server has (initdb
 * creates it), so the database named in TEST_DATABASE_URL need not exist; only its server, user and options count.
 */
export async function createTestDatabase(dir: string): Promise<TestDatabase> {
  const serverUrl = process.env.TEST_DATABASE_URL;
  if (!serverUrl) return { url: `sqlite:${path.join(dir, 'latchkey.sqlite')}`, drop: async () => undefined };
  const name = `latchkey_test_${randomBytes(6).toString('hex')}`;
  const adminUrl = withDatabase(serverUrl, 'postgres');
  const admin = openDatabase(adminUrl, { poolSize: 1 });
  try {
    await admin.knex.raw(`create database ${name}`);
  } finally {
    await admin.destroy();
  }
  return {
    url: withDatabase(serverUrl, name),
    async drop() {
      const cleanup = openDatabase(adminUrl, { poolSize: 1 });
      try {
        await cleanup.knex.raw(`drop database if exists ${name} with (force)`);
      } finally {
        await cleanup.destroy();
      }
    },
  };
}
