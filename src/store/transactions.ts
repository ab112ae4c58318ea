import type { Knex } from 'knex';
import type { Database } from '../database.js';

/**
 * An open database transaction. Services receive it from `transactions.run` and hand it on to the store methods
 * that take one (`outbox.insert`, `users.insert`/`update`, `accountTokens.*`), without ever seeing knex: what those
 * methods write commits together or not at all.
 */
export type Transaction = Knex.Transaction;

export type Transactions = ReturnType<typeof createTransactions>;

export function createTransactions(database: Database) {
  return {
    /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
    run<T>(work: (trx: Transaction) => Promise<T>): Promise<T> {
      return database.knex.transaction(work);
    },
  };
}
