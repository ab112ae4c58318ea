import type sqlite3 from 'sqlite3';
import { batchedLookup } from './batched-lookup.js';
import type { Binding, PreparedStatements } from './prepared-statements.js';
import { openSqliteHandles, type SqliteHandle, type SqliteHandleOptions } from './sqlite-handles.js';

export type SqliteStatements = PreparedStatements & {
  /** Lets the statements running or waiting finish, then finalizes every statement and closes its connections. */
  close(): Promise<void>;
};

function prepare(connection: sqlite3.Database, sql: string): Promise<sqlite3.Statement> {
  return new Promise((resolve, reject) => {
    const statement = connection.prepare(sql, (error) => (error ? reject(error) : resolve(statement)));
  });
}

/** The statement for `sql` on this handle, prepared the first time. The caller holds the handle, so none races it. */
async function statementOn(handle: SqliteHandle, sql: string): Promise<sqlite3.Statement> {
  let statement = handle.statements.get(sql);
  if (!statement) {
    statement = await prepare(handle.connection, sql);
    handle.statements.set(sql, statement);
  }
  return statement;
}

/**
 * SQLite: each statement is prepared once per connection and reused, which halves the CPU of a userinfo request:
 * building the query and preparing, running and finalizing a new statement per call cost more than the query
 * itself. A prepared statement belongs to one connection, and knex lends its connections only to its own query
 * runner, so these statements run on connections of their own (sqlite-handles.ts), opened with the same PRAGMAs
 * as knex's on the same file: WAL lets both pools read while one of them writes, and each statement is its own
 * transaction, so either pool sees what the other committed. The SQL texts are constants of the stores, so each
 * connection holds a bounded set of statements.
 */
export function sqliteStatements(options: SqliteHandleOptions): SqliteStatements {
  const handles = openSqliteHandles(options);

  // all() steps the statement to its end, which ends its read transaction; get() would leave it open.
  const rows = <Row>(sql: string, bindings: Binding[]) => handles.withHandle(async (handle) => {
    const statement = await statementOn(handle, sql);
    return new Promise<Row[]>((resolve, reject) => {
      statement.all(bindings, (error, found) => (error ? reject(error) : resolve(found as Row[])));
    });
  });

  return {
    rows,
    run: (sql, bindings) => handles.withHandle(async (handle) => {
      const statement = await statementOn(handle, sql);
      return new Promise<number>((resolve, reject) => {
        statement.run(bindings, function (error) {
          if (error) reject(error);
          else resolve(this.changes);
        });
      });
    }),
    lookup: <Row>(query: { many: string }) => batchedLookup<Row>(rows, query.many),
    close: () => handles.close(),
  };
}
