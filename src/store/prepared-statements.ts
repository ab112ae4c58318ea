import type { Knex } from 'knex';
import { batchedLookup, type Lookup } from './batched-lookup.js';

/** A value bound to one `?` placeholder. */
export type Binding = string | number | boolean | null;

type SqliteStatement = {
  all(bindings: Binding[], done: (error: Error | null, rows: unknown[]) => void): void;
  run(bindings: Binding[], done: (this: { changes: number }, error: Error | null) => void): void;
  finalize(done: () => void): void;
};

/** The parts of a node-sqlite3 Database (one pooled knex connection) used here. */
export type SqliteConnection = {
  prepare(sql: string, done: (error: Error | null) => void): SqliteStatement;
  close(done: (error: Error | null) => void): void;
};

/** Statements prepared on each pooled SQLite connection, by SQL text; they live as long as the connection. */
const statementsByConnection = new WeakMap<SqliteConnection, Map<string, SqliteStatement>>();

/**
 * SQLite refuses to close a connection while statements prepared on it are open (SQLITE_BUSY). openDatabase calls
 * this for each connection it creates, so closing one (knex's destroy, a pool eviction) finalizes them first.
 */
export function finalizeStatementsOnClose(connection: SqliteConnection): void {
  const close = connection.close.bind(connection);
  connection.close = (done) => {
    const statements = [...(statementsByConnection.get(connection)?.values() ?? [])];
    statementsByConnection.delete(connection);
    let open = statements.length;
    if (open === 0) return close(done);
    for (const statement of statements) {
      statement.finalize(() => {
        open -= 1;
        if (open === 0) close(done);
      });
    }
  };
}

/** Runs fixed SQL texts, the same on SQLite and PostgreSQL (`?` placeholders, unquoted lower-case names). */
export type PreparedStatements = {
  /** The rows of a SELECT, or of a statement with RETURNING. */
  rows<Row>(sql: string, bindings: Binding[]): Promise<Row[]>;
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

type SqliteClient = {
  acquireConnection(): Promise<SqliteConnection>;
  releaseConnection(connection: SqliteConnection): Promise<unknown>;
};

function sqliteStatements(client: SqliteClient): PreparedStatements {
  function prepare(connection: SqliteConnection, sql: string): Promise<SqliteStatement> {
    return new Promise((resolve, reject) => {
      const statement = connection.prepare(sql, (error) => (error ? reject(error) : resolve(statement)));
    });
  }

  /** Hands `use` the statement for `sql` on a pooled connection, preparing it on that connection the first time. */
  async function withStatement<T>(sql: string, use: (statement: SqliteStatement) => Promise<T>): Promise<T> {
    const connection = await client.acquireConnection();
    try {
      let statements = statementsByConnection.get(connection);
      if (!statements) statementsByConnection.set(connection, (statements = new Map()));
      let statement = statements.get(sql);
      if (!statement) {
        statement = await prepare(connection, sql);
        statements.set(sql, statement);
      }
      return await use(statement);
    } finally {
      await client.releaseConnection(connection);
    }
  }

  // all() steps the statement to its end, which ends its read transaction; get() would leave it open.
  const rows = <Row>(sql: string, bindings: Binding[]) => withStatement(sql, (statement) => new Promise<Row[]>((resolve, reject) => {
    statement.all(bindings, (error, found) => (error ? reject(error) : resolve(found as Row[])));
  }));

  return {
    rows,
    run: (sql, bindings) => withStatement(sql, (statement) => new Promise<number>((resolve, reject) => {
      statement.run(bindings, function (error) {
        if (error) reject(error);
        else resolve(this.changes);
      });
    })),
    lookup: <Row>(query: { many: string }) => batchedLookup<Row>(rows, query.many),
  };
}

/**
 * The statements on every request's path (payload, client, user and API lookups, token writes, throttle counters)
 * skip knex's query builder. On SQLite each is prepared once per pooled connection and reused, which halves the CPU
 * of a userinfo request: building the query and preparing, running and finalizing a new statement per call cost more
 * than the query itself. On PostgreSQL they run through knex.raw, which turns `?` into `$n`.
 */
export function preparedStatements(database: Knex): PreparedStatements {
  if (database.client.config.client === 'sqlite3') return sqliteStatements(database.client as unknown as SqliteClient);
  const rows = async <Row>(sql: string, bindings: Binding[]) => (await database.raw(sql, bindings as Knex.RawBinding[])).rows as Row[];
  return {
    rows,
    async run(sql, bindings) {
      return (await database.raw(sql, bindings as Knex.RawBinding[])).rowCount as number;
    },
    lookup: <Row>(query: { one: string }) => async (key: Binding[]) => (await rows<Row>(query.one, key))[0],
  };
}
