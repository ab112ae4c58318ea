import { isStorableText, type Database } from '../database.js';
import type { Binding } from './prepared-statements.js';

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
  /** The client a grant, code or token was issued to. */
  clientId?: string;
  expiresAt: number | null;
};

/** A stored oidc-provider Session: `payload` holds accountId, loginTs and, per client, its sid and grantId. */
export type StoredSession = { id: string; payload: Record<string, unknown>; expiresAt: number | null };

type PayloadRow = { payload: string; consumed_at: number | string | null; expires_at: number | string | null };
type RelatedRow = PayloadRow & {
  grant_payload: string | null; grant_consumed_at: number | string | null;
  session_payload: string | null; session_consumed_at: number | string | null;
};

/** A token as find() returns it, with the grant and the session its payload names as find() and findByUid() would. */
export type PayloadWithRelated = { token: StoredPayload; grant: StoredPayload | undefined; session: StoredPayload | undefined };

const storedPayload = (payload: string | null, consumedAt: number | string | null): StoredPayload | undefined =>
  payload === null ? undefined : { payload: JSON.parse(payload), consumedAt: consumedAt === null ? null : Number(consumedAt) };

export type OidcPayloadStore = ReturnType<typeof createOidcPayloadStore>;

export function createOidcPayloadStore(database: Database) {
  const { knex, statements } = database;
  const table = () => knex('oidc_payloads');

  /**
   * Runs a DELETE (`where`, a fixed condition) and returns the rows it removed, in the same statement (SQLite ≥ 3.35
   * and PostgreSQL both have RETURNING): a row written concurrently is either deleted and returned, or untouched.
   * Fixed SQL rather than knex's builder, whose SQLite dialect ignores `.returning()` on a delete.
   */
  async function deleteReturning(where: string, bindings: Binding[]): Promise<{ model: string; session: StoredSession }[]> {
    const rows = await statements.rows<{ model: string; id: string; payload: string; expires_at: number | string | null }>(
      `delete from oidc_payloads where ${where} returning model, id, payload, expires_at`, bindings);
    return rows.map((row) => ({
      model: row.model,
      session: { id: row.id, payload: JSON.parse(row.payload), expiresAt: row.expires_at === null ? null : Number(row.expires_at) },
    }));
  }
  const sessionsAmong = (rows: { model: string; session: StoredSession }[]) =>
    rows.filter((row) => row.model === 'Session').map((row) => row.session);

  const lookupBy = (column: 'id' | 'uid' | 'user_code') =>
    statements.lookup<PayloadRow>({
      one: `select payload, consumed_at, expires_at from oidc_payloads
        where model = ? and ${column} = ? and (expires_at is null or expires_at > ?) limit 1`,
      many: `select keys.key as key_index, p.payload, p.consumed_at, p.expires_at from json_each(?) as keys
        join oidc_payloads as p on p.model = keys.value ->> 0 and p.${column} = keys.value ->> 1
        where p.expires_at is null or p.expires_at > keys.value ->> 2`,
    });
  const lookups = { id: lookupBy('id'), uid: lookupBy('uid'), user_code: lookupBy('user_code') };

  // A token with the grant (by id) and the session (by uid) its payload names, as the separate lookups would find
  // them, in one statement: the same three columns of the same table for each, so a migration changes all alike.
  const related = `p.payload, p.consumed_at, p.expires_at,
      g.payload as grant_payload, g.consumed_at as grant_consumed_at, s.payload as session_payload, s.consumed_at as session_consumed_at`;
  const relatedJoins = (payload: string, at: string) => `
    left join oidc_payloads as g on g.model = 'Grant' and g.id = ${payload} ->> 'grantId' and (g.expires_at is null or g.expires_at > ${at})
    left join oidc_payloads as s on s.model = 'Session' and s.uid = ${payload} ->> 'sessionUid' and (s.expires_at is null or s.expires_at > ${at})`;
  const lookupWithRelated = statements.lookup<RelatedRow>({
    one: `select ${related} from (select cast(? as text) as model, cast(? as text) as id, cast(? as bigint) as at) as keys
      join oidc_payloads as p on p.model = keys.model and p.id = keys.id ${relatedJoins('cast(p.payload as json)', 'keys.at')}
      where p.expires_at is null or p.expires_at > keys.at limit 1`,
    many: `select keys.key as key_index, ${related} from json_each(?) as keys
      join oidc_payloads as p on p.model = keys.value ->> 0 and p.id = keys.value ->> 1 ${relatedJoins('p.payload', 'keys.value ->> 2')}
      where p.expires_at is null or p.expires_at > keys.value ->> 2`,
  });
  const upsertSql = `insert into oidc_payloads (model, id, payload, grant_id, uid, user_code, account_id, client_id, expires_at)
    values (?, ?, ?, ?, ?, ?, ?, ?, ?)
    on conflict (model, id) do update set payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
      user_code = excluded.user_code, account_id = excluded.account_id, client_id = excluded.client_id, expires_at = excluded.expires_at`;

  async function findBy(column: keyof typeof lookups, model: string, value: string, now: number): Promise<StoredPayload | undefined> {
    if (!isStorableText(model) || !isStorableText(value)) return undefined;
    const row = await lookups[column]([model, value, now]);
    return row && storedPayload(row.payload, row.consumed_at);
  }

  return {
    async upsert(input: PayloadInput): Promise<void> {
      await statements.run(upsertSql, [
        input.model,
        input.id,
        JSON.stringify(input.payload),
        input.grantId ?? null,
        input.uid ?? null,
        input.userCode ?? null,
        input.accountId ?? null,
        input.clientId ?? null,
        input.expiresAt,
      ]);
    },
    /**
     * Stores a placeholder row for (model, id) unless a live one is there, in one statement, so that of two requests
     * (in any process) claiming the same id exactly one wins; an expired row left for the purge is taken over.
     * Returns whether this call claimed it.
     */
    async claim(model: string, id: string, expiresAt: number, now: number): Promise<boolean> {
      const claimed = await statements.run(`insert into oidc_payloads (model, id, payload, expires_at) values (?, ?, '{}', ?)
        on conflict (model, id) do update set payload = excluded.payload, expires_at = excluded.expires_at, consumed_at = null
        where oidc_payloads.expires_at is not null and oidc_payloads.expires_at <= ?`, [model, id, expiresAt, now]);
      return claimed === 1;
    },
    find(model: string, id: string, now: number) {
      return findBy('id', model, id, now);
    },
    /** find(), and in the same statement the grant its payload's grantId names and the session its sessionUid names. */
    async findWithRelated(model: string, id: string, now: number): Promise<PayloadWithRelated | undefined> {
      if (!isStorableText(model) || !isStorableText(id)) return undefined;
      const row = await lookupWithRelated([model, id, now]);
      return row && {
        token: storedPayload(row.payload, row.consumed_at)!,
        grant: storedPayload(row.grant_payload, row.grant_consumed_at),
        session: storedPayload(row.session_payload, row.session_consumed_at),
      };
    },
    findByUid(model: string, uid: string, now: number) {
      return findBy('uid', model, uid, now);
    },
    findByUserCode(model: string, userCode: string, now: number) {
      return findBy('user_code', model, userCode, now);
    },
    async consume(model: string, id: string, now: number): Promise<{ won: true } | { won: false; grantId: string | null }> {
      const updated = await statements.run('update oidc_payloads set consumed_at = ? where model = ? and id = ? and consumed_at is null', [now, model, id]);
      if (updated === 1) return { won: true };
      const [row] = await statements.rows<{ grant_id: string | null }>('select grant_id from oidc_payloads where model = ? and id = ?', [model, id]);
      return { won: false, grantId: row?.grant_id ?? null };
    },
    async delete(model: string, id: string): Promise<void> {
      await statements.run('delete from oidc_payloads where model = ? and id = ?', [model, id]);
    },
    async deleteByGrantId(model: string, grantId: string): Promise<void> {
      await statements.run('delete from oidc_payloads where model = ? and grant_id = ?', [model, grantId]);
    },
    /** Deletes a grant and every code and token issued under it. */
    async deleteGrant(grantId: string): Promise<void> {
      await statements.run("delete from oidc_payloads where grant_id = ? or (model = 'Grant' and id = ?)", [grantId, grantId]);
    },
    /**
     * Deletes every grant, code and token issued to a client; returns how many rows went. Sessions stay (they hold
     * the user's other clients); the client's grants being gone, a session cannot issue it anything without a new
     * authorization.
     */
    async deleteByClientId(clientId: string): Promise<number> {
      if (!isStorableText(clientId)) return 0;
      return statements.run('delete from oidc_payloads where client_id = ?', [clientId]);
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
    /** The account's grants (one per app and session) that have not expired at `now`. */
    async listGrants(accountId: string, now: number): Promise<{ id: string; payload: Record<string, unknown> }[]> {
      if (!isStorableText(accountId)) return [];
      const rows = await statements.rows<{ id: string; payload: string }>(
        "select id, payload from oidc_payloads where model = 'Grant' and account_id = ? and (expires_at is null or expires_at > ?)", [accountId, now]);
      return rows.map((row) => ({ id: row.id, payload: JSON.parse(row.payload) }));
    },
    /**
     * Deletes rows of one account only (so an id of another account's session or grant matches nothing), in one
     * statement, and returns the sessions among them. `session`: that session (by uid), its activity row and the
     * grants it names with their codes and tokens; with `isKept`, everything of the account except those. `clientId`:
     * every grant, code and token of that app.
     */
    async deleteForAccount(accountId: string, target: { session: { uid: string; grantIds: string[] }; isKept: boolean } | { clientId: string }): Promise<StoredSession[]> {
      if ('clientId' in target) {
        return sessionsAmong(await deleteReturning("account_id = ? and client_id = ? and model <> 'Session'", [accountId, target.clientId]));
      }
      const { uid, grantIds } = target.session;
      // coalesce: a row without a grant id must compare false, not null (`not null` would keep every such row).
      const grants = grantIds.length > 0
        ? ` or coalesce(grant_id, '') in (${grantIds.map(() => '?').join(', ')}) or (model = 'Grant' and id in (${grantIds.map(() => '?').join(', ')}))`
        : '';
      const named = `((model = 'Session' and coalesce(uid, '') = ?) or (model = 'SessionActivity' and id = ?)${grants})`;
      return sessionsAmong(await deleteReturning(`account_id = ? and ${target.isKept ? 'not ' : ''}${named}`, [accountId, uid, uid, ...grantIds, ...grantIds]));
    },
    /** Deletes every session, grant and token of an account; returns the sessions deleted. */
    async deleteByAccountId(accountId: string): Promise<StoredSession[]> {
      return sessionsAmong(await deleteReturning('account_id = ?', [accountId]));
    },
    /**
     * Deletes at most `batchSize` expired rows, so callers can loop without long locks. Returns how many went and
     * the sessions among them.
     */
    async deleteExpired(now: number, batchSize: number): Promise<{ count: number; sessions: StoredSession[] }> {
      const rows = await deleteReturning('(model, id) in (select model, id from oidc_payloads where expires_at <= ? limit ?)', [now, batchSize]);
      return { count: rows.length, sessions: sessionsAmong(rows) };
    },
  };
}
