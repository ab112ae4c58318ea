import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { openDatabase } from '../../src/database.js';

export type TestDatabase = { url: string; drop(): Promise<void> };

/**
 * SQLite in the test's temp dir, or — when TEST_DATABASE_URL points at a PostgreSQL server — a fresh database
 * created on that server for this test and dropped afterwards. Fails loudly if PostgreSQL cannot be reached.
 */
export async function createTestDatabase(dir: string): Promise<TestDatabase> {
  const serverUrl = process.env.TEST_DATABASE_URL;
  if (!serverUrl) return { url: `sqlite:${path.join(dir, 'latchkey.sqlite')}`, drop: async () => undefined };
  const name = `latchkey_test_${randomBytes(6).toString('hex')}`;
  const admin = openDatabase(serverUrl, { poolSize: 1 });
  try {
    await admin.raw(`create database ${name}`);
  } finally {
    await admin.destroy();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    async drop() {
      const cleanup = openDatabase(serverUrl, { poolSize: 1 });
      try {
        await cleanup.raw(`drop database if exists ${name} with (force)`);
      } finally {
        await cleanup.destroy();
      }
    },
  };
}
