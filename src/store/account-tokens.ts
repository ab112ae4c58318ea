import { isStorableText, type Database } from '../database.js';
import type { Transaction } from './transactions.js';

/** What a mailed link lets its holder do; 'sign-in': the ticket an accepted invitation leaves in the browser. */
export type TokenPurpose = 'password-reset' | 'invitation' | 'email-verification' | 'email-change' | 'sign-in';

export type AccountToken = { purpose: TokenPurpose; userId: string; email: string; expiresAt: number; createdAt: number };

type TokenRow = { token_hash: string; purpose: TokenPurpose; user_id: string; email: string; expires_at: number | string; created_at: number | string };

const table = 'account_tokens';

const fromRow = (row: TokenRow): AccountToken => ({
  purpose: row.purpose, userId: row.user_id, email: row.email, expiresAt: Number(row.expires_at), createdAt: Number(row.created_at),
});

export type AccountTokenStore = ReturnType<typeof createAccountTokenStore>;

/** The mailed links (migration 0010), by the hash of their token: the table never holds a token itself. */
export function createAccountTokenStore(database: Database) {
  const { knex } = database;
  return {
    /** Deletes the user's unused links of this purpose (a new one replaces them), then stores the new one. */
    async replace(tokenHash: string, token: AccountToken, trx: Transaction): Promise<void> {
      await trx(table).where({ user_id: token.userId, purpose: token.purpose }).whereNull('consumed_at').delete();
      await trx(table).insert({
        token_hash: tokenHash, purpose: token.purpose, user_id: token.userId, email: token.email, expires_at: token.expiresAt, created_at: token.createdAt,
      });
    },

    /** The unused, unexpired link with this hash and purpose, without using it up (the page that asks for a password). */
    async findValid(tokenHash: string, purpose: TokenPurpose, now: number): Promise<AccountToken | undefined> {
      if (!isStorableText(tokenHash)) return undefined;
      const row = await knex<TokenRow>(table).where({ token_hash: tokenHash, purpose }).whereNull('consumed_at').andWhere('expires_at', '>', now).first();
      return row && fromRow(row);
    },

    /**
     * Uses the link up, if it is unused and unexpired: one conditional UPDATE, so of two requests with one link only
     * one gets it back (the other gets undefined). In `trx` when given, with the change the link allows.
     */
    async consume(tokenHash: string, purpose: TokenPurpose, now: number, trx?: Transaction): Promise<AccountToken | undefined> {
      if (!isStorableText(tokenHash)) return undefined;
      const rows = await (trx ?? knex)(table).where({ token_hash: tokenHash, purpose }).whereNull('consumed_at').andWhere('expires_at', '>', now)
        .update({ consumed_at: now }).returning('*') as TokenRow[];
      return rows[0] && fromRow(rows[0]);
    },

    /** Deletes links expired before `now` (used or not), at most `batchSize`; returns how many. */
    async deleteExpired(now: number, batchSize: number): Promise<number> {
      const expired = knex(table).select('token_hash').where('expires_at', '<=', now).limit(batchSize);
      return knex(table).whereIn('token_hash', expired).delete();
    },
  };
}
