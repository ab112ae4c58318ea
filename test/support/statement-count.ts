import pg from 'pg';
import sqlite3 from 'sqlite3';

/** The SQL of a call: a node-sqlite3 Statement's own, or the first argument (text, or pg's query config). */
function sqlOf(target: unknown, first: unknown): string {
  if (target instanceof sqlite3.Statement) return (target as { sql?: string }).sql ?? '';
  if (typeof first === 'string') return first;
  return typeof (first as { text?: unknown })?.text === 'string' ? (first as { text: string }).text : '';
}

/**
 * Counts the statements this process sends to its database while `work` runs: every node-sqlite3 call that runs SQL
 * (knex's and the prepared statements') and every PostgreSQL query, except the mail outbox's and the audit trail's,
 * which run on timers of their own (the outbox polls, audit rows are inserted in batches every 50 ms) through knex,
 * never as prepared statements. For measuring statements per request in tests.
 */
export async function countStatements(work: () => Promise<unknown>): Promise<number> {
  let count = 0;
  const patched: Array<[object, string, unknown]> = [];
  const wrap = (target: object, name: string) => {
    const original = (target as Record<string, (...args: unknown[]) => unknown>)[name];
    patched.push([target, name, original]);
    (target as Record<string, unknown>)[name] = function (this: unknown, ...args: unknown[]) {
      if (!/mail_outbox|audit_events/.test(sqlOf(this, args[0]))) count += 1;
      return original.apply(this, args);
    };
  };
  // node-sqlite3's Database#run, #all, #get and #each prepare a Statement and call the same method on it.
  wrap(sqlite3.Database.prototype, 'exec');
  for (const name of ['all', 'run', 'get', 'each']) wrap(sqlite3.Statement.prototype, name);
  wrap(pg.Client.prototype, 'query');
  try {
    await work();
    return count;
  } finally {
    for (const [target, name, original] of patched) (target as Record<string, unknown>)[name] = original;
  }
}

/**
 * The fewest statements `work` took over `times` runs: a timer elsewhere in the server (purge, outbox, audit) may add
 * a statement to any one run, never take one away.
 */
export async function fewestStatements(work: () => Promise<unknown>, times = 3): Promise<number> {
  let fewest = Infinity;
  for (let i = 0; i < times; i++) fewest = Math.min(fewest, await countStatements(work));
  return fewest;
}
