import { isStorableText, type Database } from '../database.js';

/** One stored oidc-provider artefact (session, grant, code, token, …) as the adapter sees it. */
export type StoredPayload = {
  payload: Record<string, unknown>;
  consumedAt: number | null;
};

export type PayloadInput = {
  model: string;
  id: string;
  payload: Record<string, unknown>;
  grantId?: string;
  uid?: string;
  userCode?: string;
  accountId?: string;
  expiresAt: number | null;
};

/** A stored oidc-provider Session: `payload` holds accountId, loginTs and, per client, its sid and grantId. */
export type StoredSession = { id: string; payload: Record<string, unknown>; expiresAt: number | null };

type PayloadRow = { payload: string; consumed_at: number | string | null; expires_at: number | string | null };

export type OidcPayloadStore = ReturnType<typeof createOidcPayloadStore>;

export function createOidcPayloadStore(database: Database) {
  const table = () => database('oidc_payloads');

  /**
   * Runs the DELETE of `query` and returns the rows it removed, in the same statement (SQLite ≥ 3.35 and PostgreSQL
   * both have RETURNING): a row written concurrently is either deleted and returned, or untouched.
   */
  async function deleteReturning(query: ReturnType<typeof table>): Promise<{ model: string; session: StoredSession }[]> {
    const { sql, bindings } = query.delete().toSQL();
    const result = await database.raw(`${sql} returning model, id, payload, expires_at`, bindings);
    const rows = (Array.isArray(result) ? result : result.rows) as { model: string; id: string; payload: string; expires_at: number | string | null }[];
    return rows.map((row) => ({
      model: row.model,
      session: { id: row.id, payload: JSON.parse(row.payload), expiresAt: row.expires_at === null ? null : Number(row.expires_at) },
    }));
  }
  const sessionsAmong = (rows: { model: string; session: StoredSession }[]) =>
    rows.filter((row) => row.model === 'Session').map((row) => row.session);

  async function findWhere(where: Record<string, string>, now: number): Promise<StoredPayload | undefined> {
    if (!Object.values(where).every(isStorableText)) return undefined;
    const row = await table()
      .select('payload', 'consumed_at', 'expires_at')
      .where(where)
      .andWhere((query) => query.whereNull('expires_at').orWhere('expires_at', '>', now))
      .first() as PayloadRow | undefined;
    if (!row) return undefined;
    return { payload: JSON.parse(row.payload), consumedAt: row.consumed_at === null ? null : Number(row.consumed_at) };
  }

  return {
    async upsert(input: PayloadInput): Promise<void> {
      await table()
        .insert({
          model: input.model,
          id: input.id,
          payload: JSON.stringify(input.payload),
          grant_id: input.grantId ?? null,
          uid: input.uid ?? null,
          user_code: input.userCode ?? null,
          account_id: input.accountId ?? null,
          expires_at: input.expiresAt,
        })
        .onConflict(['model', 'id'])
        .merge(['payload', 'grant_id', 'uid', 'user_code', 'account_id', 'expires_at']);
    },
    find(model: string, id: string, now: number) {
      return findWhere({ model, id }, now);
    },
    findByUid(model: string, uid: string, now: number) {
      return findWhere({ model, uid }, now);
    },
    findByUserCode(model: string, userCode: string, now: number) {
      return findWhere({ model, user_code: userCode }, now);
    },
    /**
     * Marks the payload consumed with one conditional UPDATE, so of two racing requests exactly one wins.
     * Returns the grant id of a payload that was already consumed (a replay), or undefined when this call won.
     */
    async consume(model: string, id: string, now: number): Promise<{ won: true } | { won: false; grantId: string | null }> {
      const updated = await table().where({ model, id }).whereNull('consumed_at').update({ consumed_at: now });
      if (updated === 1) return { won: true };
      const row = await table().select('grant_id').where({ model, id }).first() as { grant_id: string | null } | undefined;
      return { won: false, grantId: row?.grant_id ?? null };
    },
    async delete(model: string, id: string): Promise<void> {
      await table().where({ model, id }).delete();
    },
    async deleteByGrantId(model: string, grantId: string): Promise<void> {
      await table().where({ model, grant_id: grantId }).delete();
    },
    /** Deletes a grant and every code and token issued under it. */
    async deleteGrant(grantId: string): Promise<void> {
      await table()
        .where({ grant_id: grantId })
        .orWhere((query) => query.where({ model: 'Grant', id: grantId }))
        .delete();
    },
    /** The account's sessions that have not expired at `now`, oldest first. */
    async listSessions(accountId: string, now: number): Promise<StoredSession[]> {
      const rows = await table()
        .select('id', 'payload', 'expires_at')
        .where({ model: 'Session', account_id: accountId })
        .andWhere((query) => query.whereNull('expires_at').orWhere('expires_at', '>', now))
        .orderBy('expires_at') as { id: string; payload: string; expires_at: number | string | null }[];
      return rows.map((row) => ({ id: row.id, payload: JSON.parse(row.payload), expiresAt: row.expires_at === null ? null : Number(row.expires_at) }));
    },
    /** Deletes every session, grant and token of an account; returns the sessions deleted. */
    async deleteByAccountId(accountId: string): Promise<StoredSession[]> {
      return sessionsAmong(await deleteReturning(table().where({ account_id: accountId })));
    },
    /**
     * Deletes at most `batchSize` expired rows, so callers can loop without long locks. Returns how many went and
     * the sessions among them.
     */
    async deleteExpired(now: number, batchSize: number): Promise<{ count: number; sessions: StoredSession[] }> {
      const expired = table().select('model', 'id').where('expires_at', '<=', now).limit(batchSize);
      const rows = await deleteReturning(table().whereIn(['model', 'id'], expired));
      return { count: rows.length, sessions: sessionsAmong(rows) };
    },
  };
}
