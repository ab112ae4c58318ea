import type { Knex } from 'knex';
import { batchedLookup } from './batched-lookup.js';
import type { Binding, PreparedStatements } from './prepared-statements.js';

type SqliteStatement = {
  all(bindings: Binding[], done: (error: Error | null, rows: unknown[]) => void): void;
  run(bindings: Binding[], done: (this: { changes: number }, error: Error | null) => void): void;
  finalize(done: () => void): void;
};

/** The parts of a node-sqlite3 Database (one pooled knex connection) used here. */
type SqliteConnection = {
  prepare(sql: string, done: (error: Error | null) => void): SqliteStatement;
};

/**
 * The one place that reaches into knex's internals: `client.acquireConnection` and `client.releaseConnection`,
 * which knex's own runner uses and does not document. A prepared statement belongs to one connection, so it has to
 * run on a connection we hold; the public alternatives cost more than they save. `knex.transaction` holds one but
 * adds BEGIN and COMMIT to every statement, and a pool of sqlite3 handles of our own beside knex's would double the
 * connections to the file and could not share a `:memory:` database. Keep this to these two calls.
 */
type PooledClient = {
  acquireConnection(): Promise<SqliteConnection>;
  releaseConnection(connection: SqliteConnection): Promise<unknown>;
};

export type SqliteStatements = PreparedStatements & {
  /**
   * Finalizes every statement prepared so far, once the statements running now are done; statements run from then
   * on are finalized as soon as they are done. SQLite refuses to close a connection while statements prepared on it
   * are open (SQLITE_BUSY), so the database calls this before it closes its pool. openDatabase keeps knex from
   * closing connections before that (the pool's `min` is its `max`).
   */
  finalizeAll(): Promise<void>;
};

/**
 * SQLite: each statement is prepared once per pooled connection and reused, which halves the CPU of a userinfo
 * request: building the query and preparing, running and finalizing a new statement per call cost more than the
 * query itself. The statements belong to this one knex instance (its connections and their statements, by SQL text).
 */
export function sqliteStatements(knex: Knex): SqliteStatements {
  const client = knex.client as unknown as PooledClient;
  const statementsByConnection = new Map<SqliteConnection, Map<string, SqliteStatement>>();
  let isClosing = false;
  let running = 0;
  let whenNoneRunning: (() => void) | undefined;

  function prepare(connection: SqliteConnection, sql: string): Promise<SqliteStatement> {
    return new Promise((resolve, reject) => {
      const statement = connection.prepare(sql, (error) => (error ? reject(error) : resolve(statement)));
    });
  }

  const finalize = (statement: SqliteStatement) => new Promise<void>((resolve) => statement.finalize(resolve));

  /** Hands `use` the statement for `sql` on a pooled connection, preparing it on that connection the first time. */
  async function withStatement<T>(sql: string, use: (statement: SqliteStatement) => Promise<T>): Promise<T> {
    const connection = await client.acquireConnection();
    running += 1;
    try {
      if (isClosing) {
        const statement = await prepare(connection, sql);
        try {
          return await use(statement);
        } finally {
          await finalize(statement);
        }
      }
      let statements = statementsByConnection.get(connection);
      if (!statements) statementsByConnection.set(connection, (statements = new Map()));
      let statement = statements.get(sql);
      if (!statement) {
        statement = await prepare(connection, sql);
        statements.set(sql, statement);
      }
      return await use(statement);
    } finally {
      running -= 1;
      if (running === 0) whenNoneRunning?.();
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
    async finalizeAll() {
      isClosing = true;
      if (running > 0) await new Promise<void>((resolve) => (whenNoneRunning = resolve));
      const statements = [...statementsByConnection.values()].flatMap((byText) => [...byText.values()]);
      statementsByConnection.clear();
      await Promise.all(statements.map(finalize));
    },
  };
}
