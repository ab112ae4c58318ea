import { isStorableText, type Database } from '../database.js';

/** One security event of the audit trail. Never holds a password, token, code or secret. */
export type AuditEvent = {
  type: string;
  occurredAt: number;
  accountId?: string | null;
  email?: string | null;
  clientId?: string | null;
  ip?: string | null;
  details?: Record<string, unknown>;
};

type AuditRow = {
  type: string;
  occurred_at: number | string;
  account_id: string | null;
  email: string | null;
  client_id: string | null;
  ip: string | null;
  details: string;
};

export type AuditEventQuery = { email?: string; accountId?: string; since?: number; types?: string[]; limit: number };

export type AuditEventStore = ReturnType<typeof createAuditEventStore>;

/**
 * Events carry what attackers typed (an email with a NUL byte, say). PostgreSQL refuses text containing U+0000,
 * and one such value would fail the whole batch, hiding the other events from the table: it is stored as U+FFFD.
 */
function storable<T extends string | null>(value: T): T {
  return (value === null || isStorableText(value) ? value : value.replaceAll('\u0000', '\uFFFD')) as T;
}

export function createAuditEventStore(database: Database) {
  const { knex } = database;
  const table = () => knex<AuditRow>('audit_events');
  return {
    /** Stores the events in one statement. */
    async insert(events: AuditEvent[]): Promise<void> {
      if (events.length === 0) return;
      await table().insert(events.map((event) => ({
        type: storable(event.type),
        occurred_at: event.occurredAt,
        account_id: storable(event.accountId ?? null),
        email: storable(event.email ?? null),
        client_id: storable(event.clientId ?? null),
        ip: storable(event.ip ?? null),
        details: JSON.stringify(event.details ?? {}), // JSON escapes NUL itself
      })));
    },
    /** The newest `limit` events matching the query, oldest first. `email` matches the email or its account id. */
    async list(query: AuditEventQuery): Promise<AuditEvent[]> {
      const rows = await table()
        .select('type', 'occurred_at', 'account_id', 'email', 'client_id', 'ip', 'details')
        .modify((builder) => {
          if (query.since !== undefined) builder.where('occurred_at', '>=', query.since);
          if (query.types !== undefined) builder.whereIn('type', query.types);
          if (query.email !== undefined || query.accountId !== undefined) {
            builder.andWhere((who) => {
              if (query.email !== undefined) who.orWhere('email', query.email);
              if (query.accountId !== undefined) who.orWhere('account_id', query.accountId);
            });
          }
        })
        .orderBy([{ column: 'occurred_at', order: 'desc' }, { column: 'id', order: 'desc' }])
        .limit(query.limit);
      return (rows as AuditRow[]).reverse().map((row) => ({
        type: row.type,
        occurredAt: Number(row.occurred_at),
        accountId: row.account_id,
        email: row.email,
        clientId: row.client_id,
        ip: row.ip,
        details: JSON.parse(row.details),
      }));
    },
    /** Deletes at most `batchSize` events older than `before`; returns how many went. */
    async deleteOlderThan(before: number, batchSize: number): Promise<number> {
      const old = table().select('id').where('occurred_at', '<', before).limit(batchSize);
      return table().whereIn('id', old).delete();
    },
  };
}
