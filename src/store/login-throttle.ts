import { createRequire } from 'node:module';
import { RateLimiterPostgres, RateLimiterRes, type RateLimiterAbstract, type RateLimiterStoreAbstract as StoreBase } from 'rate-limiter-flexible';
import type { Database } from '../database.js';
import { preparedStatements, type PreparedStatements } from './prepared-statements.js';

// The base class of every rate-limiter-flexible store; its types are published, but its index does not export it.
const RateLimiterStoreAbstract: typeof StoreBase = createRequire(import.meta.url)('rate-limiter-flexible/lib/RateLimiterStoreAbstract.js');

/** One counter of the login throttle: `points` allowed per `durationSeconds`, kept in the `login_throttle` table. */
export type LimiterOptions = { keyPrefix: string; points: number; durationSeconds: number };
export type LimiterFactory = (options: LimiterOptions) => RateLimiterAbstract;

const tableName = 'login_throttle';

type CounterRow = { points: number; expire: number | string | null };

/**
 * rate-limiter-flexible's store contract on SQLite, in prepared statements: every change is one INSERT … ON CONFLICT
 * … RETURNING, atomic across the worker processes that share the file. (The library's own SQLite limiter wraps it in
 * a SAVEPOINT that it leaves open when the statement fails, and hands the pooled connection back before it has
 * finished, so the next query on that connection would run inside the open savepoint.)
 */
class SqliteRateLimiter extends RateLimiterStoreAbstract {
  private readonly statements: PreparedStatements;

  constructor(database: Database, options: LimiterOptions) {
    super({ storeClient: database, keyPrefix: options.keyPrefix, points: options.points, duration: options.durationSeconds });
    this.statements = preparedStatements(database);
  }

  async _upsert(key: string, points: number, msDuration: number, forceExpire = false): Promise<CounterRow> {
    const now = Date.now();
    const expire = msDuration > 0 ? now + msDuration : null;
    const [row] = forceExpire
      ? await this.statements.rows<CounterRow>(
        `insert into ${tableName} (key, points, expire) values (?, ?, ?)
         on conflict(key) do update set points = excluded.points, expire = excluded.expire
         returning points, expire`, [key, points, expire])
      : await this.statements.rows<CounterRow>(
        `insert into ${tableName} (key, points, expire) values (?, ?, ?)
         on conflict(key) do update set
           points = case when expire is null or expire > ? then points + excluded.points else excluded.points end,
           expire = case when expire is null or expire > ? then expire else excluded.expire end
         returning points, expire`, [key, points, expire, now, now]);
    return row;
  }

  async _get(key: string): Promise<CounterRow | null> {
    const [row] = await this.statements.rows<CounterRow>(
      `select points, expire from ${tableName} where key = ? and (expire is null or expire > ?)`, [key, Date.now()]);
    return row ?? null;
  }

  async _delete(key: string): Promise<boolean> {
    return (await this.statements.run(`delete from ${tableName} where key = ?`, [key])) > 0;
  }

  _getRateLimiterRes(_key: string, changedPoints: number, row: CounterRow): RateLimiterRes {
    const consumedPoints = Number(row.points);
    const expire = row.expire === null ? null : Number(row.expire);
    return new RateLimiterRes(
      Math.max(this.points - consumedPoints, 0),
      expire === null ? -1 : Math.max(expire - Date.now(), 0),
      consumedPoints,
      changedPoints === consumedPoints,
    );
  }
}

/**
 * The throttle's counters on this database, shared by every instance and worker process that uses it: on SQLite
 * (one host) through our limiter above on the shared file; on PostgreSQL through rate-limiter-flexible's own
 * limiter on the knex pool.
 */
export function throttleLimiters(database: Database): LimiterFactory {
  if (database.client.config.client === 'sqlite3') return (options) => new SqliteRateLimiter(database, options);
  return (options) => new RateLimiterPostgres({
    storeClient: database,
    storeType: 'knex',
    tableName,
    tableCreated: true, // migration 0004
    clearExpiredByTimeout: false, // the purge timer calls deleteExpiredThrottleCounters
    keyPrefix: options.keyPrefix,
    points: options.points,
    duration: options.durationSeconds,
  });
}

/** Deletes counters that expired before `now`; returns how many. */
export async function deleteExpiredThrottleCounters(database: Database, now: number, batchSize: number): Promise<number> {
  const expired = database(tableName).select('key').where('expire', '<=', now).limit(batchSize);
  return database(tableName).whereIn('key', expired).delete();
}
