import type { Database } from '../database.js';

export type RegistrationTokenStore = ReturnType<typeof createRegistrationTokenStore>;

/** Initial access tokens (RFC 7591 §3) by their SHA-256 digest; the token itself is never stored. */
export function createRegistrationTokenStore(database: Database) {
  const { knex, statements } = database;
  return {
    async insert(token: { digest: string; uses: number; expiresAt: number; createdAt: number }): Promise<void> {
      await knex('registration_tokens').insert({
        token_digest: token.digest, uses_left: token.uses, expires_at: token.expiresAt, created_at: token.createdAt,
      });
    },
    /** Takes one use of a live token in one statement, so concurrent registrations never take more than it has. */
    async use(digest: string, now: number): Promise<boolean> {
      const updated = await statements.run(
        'update registration_tokens set uses_left = uses_left - 1 where token_digest = ? and uses_left > 0 and expires_at > ?',
        [digest, now],
      );
      return updated === 1;
    },
    /** Deletes tokens expired at `now`, at most `batchSize`; returns how many. */
    async deleteExpired(now: number, batchSize: number): Promise<number> {
      const expired = knex('registration_tokens').select('token_digest').where('expires_at', '<=', now).limit(batchSize);
      return knex('registration_tokens').whereIn('token_digest', expired).delete();
    },
    /** Gives back a use taken by a registration that was then refused. */
    async refund(digest: string): Promise<void> {
      await statements.run('update registration_tokens set uses_left = uses_left + 1 where token_digest = ?', [digest]);
    },
  };
}
