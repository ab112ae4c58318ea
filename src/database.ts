import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import knex, { type Knex } from 'knex';
import pg from 'pg';
import { postgresStatements, type PreparedStatements } from './store/prepared-statements.js';
import { sqliteStatements } from './store/sqlite-statements.js';

/**
 * One open database, SQLite or PostgreSQL: openDatabase picks the statements for its dialect, and nothing outside
 * this module branches on which it is. The stores (the only code that touches it) build queries with `knex` and run
 * the statements on every request's path through `statements`, which belong to this one value.
 */
export type Database = {
  knex: Knex;
  statements: PreparedStatements;
  /** Whether the database answers now (the health check). */
  isReachable(): Promise<boolean>;
  destroy(): Promise<void>;
};

const migrationsDir = fileURLToPath(new URL('../migrations/', import.meta.url));

/**
 * Reads the migrations in name order; knex's own loader does not understand TypeScript ESM. Under `npm start` they
 * are the compiled .js files, under tsx the .ts sources: either way each is recorded under its source name.
 */
const migrationSource: Knex.MigrationSource<string> = {
  async getMigrations() {
    return fs.readdirSync(migrationsDir).filter((name) => /^\d{4}_.*\.(ts|js)$/.test(name) && !name.endsWith('.d.ts')).sort();
  },
  getMigrationName(name) {
    return name.replace(/\.js$/, '.ts');
  },
  async getMigration(name) {
    return import(pathToFileURL(path.join(migrationsDir, name)).href);
  },
};

// PostgreSQL returns int8 as text to protect precision; our int8 columns hold epoch milliseconds, far below 2^53.
const pgTypes = {
  getTypeParser(oid: number, format?: string) {
    if (oid === pg.types.builtins.INT8) return Number;
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

function sqliteFile(url: string): string {
  const file = url.slice('sqlite:'.length);
  // Each connection to `:memory:` (or to an unnamed file) would get a database of its own.
  if (file === '' || file === ':memory:') throw new Error(`SQLite needs a file (sqlite:PATH), got "${url}"`);
  // The database holds password hashes and client secrets: private to the service user. SQLite gives its -wal and
  // -shm files the mode of the database file, which we create first.
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  return file;
}

export type DatabaseOptions = { poolSize?: number; timeoutMs?: number };

/**
 * WAL lets readers work while one connection writes, and node-sqlite3 runs each statement on libuv's thread pool
 * (4 threads): up to 4 connections (in knex's pool, and as many for the prepared statements) let requests overlap
 * their queries instead of queueing behind one connection.
 * Writers still take turns (busy_timeout); every statement is its own transaction, so none can deadlock.
 */
const sqliteMaxConnections = 4;

/** What every SQLite connection runs first, knex's and the prepared statements' alike. */
function sqlitePragmas(timeoutMs: number): string {
  return `PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = ${timeoutMs}; PRAGMA foreign_keys = ON;`;
}

/**
 * Opens `sqlite:FILE` or `postgres://…` (TLS and other libpq options pass through the URL,
 * e.g. `?sslmode=verify-full&sslrootcert=/path/ca.pem`). SQLite gets WAL and a busy timeout. Connecting and waiting
 * for a pooled connection give up after `timeoutMs`, so an unreachable database fails fast instead of hanging.
 * On SQLite the prepared statements have connections of their own, as many as knex's (sqlite-statements.ts).
 */
export function openDatabase(url: string, options: DatabaseOptions = {}): Database {
  const timeoutMs = options.timeoutMs ?? 5000;
  if (url.startsWith('sqlite:')) {
    const filename = sqliteFile(url);
    const connections = Math.min(options.poolSize ?? sqliteMaxConnections, sqliteMaxConnections);
    const setup = sqlitePragmas(timeoutMs);
    const sqlite = knex({
      client: 'sqlite3',
      connection: { filename },
      useNullAsDefault: true,
      acquireConnectionTimeout: timeoutMs,
      pool: {
        max: connections,
        afterCreate(connection: { exec(sql: string, done: (error: Error | null) => void): void }, done: (error: Error | null, connection: unknown) => void) {
          connection.exec(setup, (error) => done(error, connection));
        },
      },
    });
    const statements = sqliteStatements({ filename, max: connections, setup, timeoutMs });
    return {
      knex: sqlite,
      statements,
      isReachable: () => isReachable(sqlite),
      async destroy() {
        try {
          await statements.close();
        } finally {
          await sqlite.destroy();
        }
      },
    };
  }
  const postgres = knex({
    client: 'pg',
    // A statement may take longer than a connection attempt; six times the connect timeout bounds a stalled network.
    connection: { connectionString: url, types: pgTypes, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs * 6 },
    pool: { min: 0, max: options.poolSize ?? 10 },
    acquireConnectionTimeout: timeoutMs,
  });
  return {
    knex: postgres,
    statements: postgresStatements(postgres),
    isReachable: () => isReachable(postgres),
    destroy: () => postgres.destroy(),
  };
}

async function isReachable(connection: Knex): Promise<boolean> {
  try {
    await connection.raw('select 1');
    return true;
  } catch {
    return false;
  }
}

/** Instances starting together race to create knex's bookkeeping tables and then for its migration lock. */
function isMigrationRace(error: unknown): boolean {
  const { name, code, message } = error as { name?: string; code?: string; message?: string };
  // SQLITE_BUSY: another process is switching a new file to WAL, which SQLite does not wait for.
  return name === 'MigrationLocked' || code === '42P07' || code === 'SQLITE_BUSY' || isUniqueViolation(error) || /already exists/.test(message ?? '');
}

/**
 * knex creates its lock table and then inserts its one row if the table is empty. Processes that start together on
 * an empty database can each find it empty and each insert a row; knex then never takes the lock again (it locks by
 * updating exactly one unlocked row) and every start-up waits until it gives up. The first row is the lock (whoever
 * holds it locked that one), so the others can go.
 */
async function removeDuplicateMigrationLocks(database: Knex): Promise<void> {
  const locks = () => database('knex_migrations_lock');
  if (!(await database.schema.hasTable('knex_migrations_lock'))) return;
  await locks().where('index', '>', locks().min('index')).delete();
}

/**
 * Runs pending migrations on a single connection of its own, closed afterwards: migrations are multi-statement
 * transactions, and a second connection of the same process waiting on their lock would only wait for itself.
 * A process that loses the start-up race waits for the winner (up to `lockWaitMs`).
 */
export async function migrateDatabase(url: string, options: DatabaseOptions = {}, lockWaitMs = 60_000): Promise<void> {
  const database = openDatabase(url, { ...options, poolSize: 1 });
  const { knex: migrator } = database;
  const deadline = Date.now() + lockWaitMs;
  try {
    for (;;) {
      try {
        await migrator.migrate.latest({ migrationSource });
        return;
      } catch (error) {
        if (!isMigrationRace(error) || Date.now() > deadline) throw error;
        await removeDuplicateMigrationLocks(migrator);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } finally {
    await database.destroy();
  }
}

/**
 * PostgreSQL refuses any text containing U+0000 (the whole query fails); SQLite stores it. No value Latchkey writes
 * contains one, so a lookup by such a value (a client_id, token, email or resource sent by anyone) matches no row:
 * stores answer "not found" without asking the database, the same on both.
 */
export function isStorableText(value: string): boolean {
  return !value.includes('\u0000');
}

/** True when an insert failed on a unique constraint, in either SQLite or PostgreSQL. */
export function isUniqueViolation(error: unknown): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return code === '23505' || /UNIQUE constraint failed/.test(message ?? '');
}

const unavailableCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'SQLITE_BUSY', 'SQLITE_CANTOPEN', '57P01', '57P02', '57P03', '53300']);

/** True when an error means "the database cannot be reached right now" rather than a bug: callers answer 503. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const { code, name, message } = (error ?? {}) as { code?: string; name?: string; message?: string };
  return (code !== undefined && (unavailableCodes.has(code) || code.startsWith('08')))
    || name === 'KnexTimeoutError'
    || /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Unable to acquire a connection/i.test(message ?? '');
}
