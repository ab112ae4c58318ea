import type { Database } from '../database.js';
import type { Transaction } from './transactions.js';

export type OutboxStatus = 'pending' | 'sending' | 'sent' | 'failed';

export type OutboxMail = {
  id: string;
  kind: string;
  recipient: string;
  subject: string;
  /** Null once the mail is delivered or given up on. */
  textBody: string | null;
  htmlBody: string | null;
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: number;
  leaseUntil: number | null;
  lastError: string | null;
  createdAt: number;
  sentAt: number | null;
};

type OutboxRow = {
  id: string; kind: string; recipient: string; subject: string; text_body: string | null; html_body: string | null; status: OutboxStatus;
  attempts: number | string; next_attempt_at: number | string; lease_until: number | string | null; last_error: string | null;
  created_at: number | string; sent_at: number | string | null;
};

const numberOrNull = (value: number | string | null) => (value === null ? null : Number(value));

function fromRow(row: OutboxRow): OutboxMail {
  return {
    id: row.id, kind: row.kind, recipient: row.recipient, subject: row.subject, textBody: row.text_body, htmlBody: row.html_body,
    status: row.status, attempts: Number(row.attempts), nextAttemptAt: Number(row.next_attempt_at), leaseUntil: numberOrNull(row.lease_until),
    lastError: row.last_error, createdAt: Number(row.created_at), sentAt: numberOrNull(row.sent_at),
  };
}

const table = 'mail_outbox';

export type OutboxStore = ReturnType<typeof createOutboxStore>;

/** The mail outbox table (migration 0010). Time is passed in (epoch ms). */
export function createOutboxStore(database: Database) {
  const { knex } = database;
  return {
    /** Writes a new pending mail, in `trx` when given (the transaction of the change the mail announces). */
    async insert(mail: Pick<OutboxMail, 'id' | 'kind' | 'recipient' | 'subject' | 'textBody' | 'htmlBody' | 'createdAt'>, trx?: Transaction): Promise<void> {
      await (trx ?? knex)(table).insert({
        id: mail.id, kind: mail.kind, recipient: mail.recipient, subject: mail.subject, text_body: mail.textBody, html_body: mail.htmlBody,
        status: 'pending', attempts: 0, next_attempt_at: mail.createdAt, created_at: mail.createdAt,
      });
    },

    /**
     * Claims up to `limit` mails due at `now` for one sender until `leaseUntil`: pending ones whose retry time has
     * come, and ones a sender claimed but never finished (it crashed) whose lease is over. One UPDATE, with the
     * status condition checked again on every row it changes: of senders claiming at once (any number of processes
     * or instances), each row goes to exactly one. PostgreSQL re-checks the WHERE of a row another transaction
     * changed meanwhile; SQLite runs one writer at a time.
     */
    async claimDue(now: number, leaseUntil: number, limit: number): Promise<OutboxMail[]> {
      const isDue = (query: ReturnType<typeof knex>) => query.where((either) => either
        .where((due) => due.where('status', 'pending').andWhere('next_attempt_at', '<=', now))
        .orWhere((stale) => stale.where('status', 'sending').andWhere('lease_until', '<=', now)));
      const due = isDue(knex(table).select('id')).orderBy('next_attempt_at').limit(limit);
      const rows = await isDue(knex(table).whereIn('id', due))
        .update({ status: 'sending', lease_until: leaseUntil, attempts: knex.raw('attempts + 1') })
        .returning('*') as OutboxRow[];
      return rows.map(fromRow);
    },

    /** Delivered: the bodies (which may hold a link) are cleared. Only the claim that holds the lease counts. */
    async markSent(id: string, leaseUntil: number, now: number): Promise<boolean> {
      const changed = await knex(table).where({ id, status: 'sending', lease_until: leaseUntil })
        .update({ status: 'sent', sent_at: now, lease_until: null, text_body: null, html_body: null, last_error: null });
      return changed === 1;
    },

    /** Not delivered this time: pending again from `nextAttemptAt`. */
    async markRetry(id: string, leaseUntil: number, nextAttemptAt: number, error: string): Promise<void> {
      await knex(table).where({ id, status: 'sending', lease_until: leaseUntil })
        .update({ status: 'pending', next_attempt_at: nextAttemptAt, lease_until: null, last_error: error });
    },

    /** Given up on after the last attempt: the bodies are cleared like a sent mail's. */
    async markFailed(id: string, leaseUntil: number, error: string): Promise<void> {
      await knex(table).where({ id, status: 'sending', lease_until: leaseUntil })
        .update({ status: 'failed', lease_until: null, last_error: error, text_body: null, html_body: null });
    },

    /** The newest mails first, at most `limit`. */
    async list(limit: number): Promise<OutboxMail[]> {
      const rows = await knex<OutboxRow>(table).orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id' }]).limit(limit);
      return rows.map(fromRow);
    },

    /** Deletes sent and failed mails created before `before`, at most `batchSize`; returns how many. */
    async deleteFinishedBefore(before: number, batchSize: number): Promise<number> {
      const old = knex(table).select('id').whereIn('status', ['sent', 'failed']).andWhere('created_at', '<', before).limit(batchSize);
      return knex(table).whereIn('id', old).delete();
    },
  };
}
