import type { Knex } from 'knex';
import type { Lookup } from './batched-lookup.js';

/** A value bound to one `?` placeholder. */
export type Binding = string | number | boolean | null;

/**
 * Runs fixed SQL texts, the same on SQLite and PostgreSQL (`?` placeholders, unquoted lower-case names). The
 * statements on every request's path (payload, client, user and API lookups, token writes, throttle counters) skip
 * knex's query builder. openDatabase picks the implementation for its dialect: sqlite-statements.ts prepares each
 * once per connection of its own pool, postgresStatements below runs them through knex.raw.
 */
export type PreparedStatements = {
  /**
   * The rows of a SELECT, or of a statement with RETURNING. `within`: a transaction the caller holds while it reads.
   * PostgreSQL runs the statement in it: these statements share knex's pool, and a transaction that asks the pool
   * for a second connection while it holds one waits for ever once every connection is held that way. SQLite runs
   * it on its own handles as always (never knex's pool; and a read inside SQLite's deferred transaction would make
   * that transaction's later write fail with SQLITE_BUSY instead of waiting for the lock): it reads what is
   * committed, not the transaction's own writes.
   */
  rows<Row>(sql: string, bindings: Binding[], within?: Knex.Transaction): Promise<Row[]>;
  /** Runs an INSERT, UPDATE or DELETE and returns how many rows it changed. */
  run(sql: string, bindings: Binding[]): Promise<number>;
  /**
   * Finds at most one row per key. PostgreSQL runs `query.one` (a `?` per value of the key) for each key; SQLite
   * runs `query.many` once for all the keys asked for in the same turn of the event loop (see batchedLookup).
   */
  lookup<Row>(query: { one: string; many: string }): Lookup<Row>;
};

/** The lookup of a whole row by one column (a constant table and column name, never input). */
export function rowByColumn(table: string, column: string): { one: string; many: string } {
  return {
    one: `select * from ${table} where ${column} = ?`,
    many: `select keys.key as key_index, ${table}.* from json_each(?) as keys join ${table} on ${table}.${column} = keys.value ->> 0`,
  };
}

/** PostgreSQL: knex.raw turns `?` into `$n`; the server plans each statement. */
export function postgresStatements(knex: Knex): PreparedStatements {
  const rows = async <Row>(sql: string, bindings: Binding[], within?: Knex.Transaction) => (await (within ?? knex).raw(sql, bindings as Knex.RawBinding[])).rows as Row[];
  return {
    rows,
    async run(sql, bindings) {
      return (await knex.raw(sql, bindings as Knex.RawBinding[])).rowCount as number;
    },
    lookup: <Row>(query: { one: string }) => async (key: Binding[]) => (await rows<Row>(query.one, key))[0],
  };
}
