import pg from 'pg';
import sqlite3 from 'sqlite3';

/** The SQL of a call: a node-sqlite3 Statement's own, or the first argument (text, or pg's query config). */
function sqlOf(target: unknown, first: unknown): string {
  if (target instanceof sqlite3.Statement) return '';
  if (typeof first === 'string') return first;
  return typeof (first as { text?: unknown })?.text === 'string' ? (first as { text: string }).text : '';
}

/**
 * Counts the statements this process sends to its database while `work` runs: every node-sqlite3 call that runs SQL
 * (knex's and the prepared statements') and every PostgreSQL query, except the mail outbox's, which polls on a timer
 * of its own (no prepared statement touches it). For measuring statements per request in tests.
 */
export async function countStatements(work: () => Promise<unknown>): Promise<number> {
  let count = 0;
  const patched: Array<[object, string, unknown]> = [];
  const wrap = (target: object, name: string) => {
    const original = (target as Record<string, (...args: unknown[]) => unknown>)[name];
    patched.push([target, name, original]);
    (target as Record<string, unknown>)[name] = function (this: unknown, ...args: unknown[]) {
      if (!sqlOf(this, args[0]).includes('mail_outbox')) count += 1;
      return original.apply(this, args);
    };
  };
  for (const name of ['all', 'run', 'get', 'each', 'exec']) wrap(sqlite3.Database.prototype, name);
  for (const name of ['all', 'run', 'get', 'each']) wrap(sqlite3.Statement.prototype, name);
  wrap(pg.Client.prototype, 'query');
  try {
    await work();
    return count;
  } finally {
    for (const [target, name, original] of patched) (target as Record<string, unknown>)[name] = original;
  }
}
