import type { Logger } from 'pino';
import type { AuditEvent, AuditEventStore } from './store/audit-events.js';

export type AuditRecord = Omit<AuditEvent, 'occurredAt'>;

/** Events that may be an attack in progress are logged at `warn`; the rest at `info`. */
const warnings = new Set(['sign_in.failure', 'sign_in.second_factor_failure', 'sign_in.locked', 'sign_in.throttled', 'mfa.reset', 'token.failure', 'token.replay_detected']);

/** Rows per INSERT: well under SQLite's and PostgreSQL's limits on bound parameters (7 a row). */
const maxRowsPerInsert = 100;
/** How long events gather before their batch is written. */
const batchWindowMs = 50;

/**
 * The audit trail: every security event becomes one JSON log line at once and one `audit_events` row. Rows are
 * written in batches: the events recorded within `batchWindowMs` go into one multi-row INSERT, so under load the
 * trail costs a statement per batch rather than per token (a single-row INSERT per token request cost a quarter of
 * the client_credentials throughput). Recording never throws and callers on the request path do not
 * wait for it: a failed write is logged, the request goes on. A crash can lose the last `batchWindowMs` of events from the
 * table; their log lines are already out. `record()` resolves once its batch is written; `settled()` waits for
 * every batch in flight (the CLI before it exits, the server before it closes the pool).
 */
export function createAudit(deps: { events: AuditEventStore; logger: Logger; now?: () => number }) {
  const { events, logger } = deps;
  const now = deps.now ?? Date.now;
  let queued: AuditEvent[] = [];
  let nextBatch: Promise<void> | undefined;
  const inFlight = new Set<Promise<void>>();

  async function writeQueued(): Promise<void> {
    const batch = queued;
    queued = [];
    nextBatch = undefined;
    for (let start = 0; start < batch.length; start += maxRowsPerInsert) {
      const rows = batch.slice(start, start + maxRowsPerInsert);
      try {
        await events.insert(rows);
      } catch (error) {
        logger.error({ event: 'audit.write_failed', count: rows.length, types: [...new Set(rows.map((row) => row.type))], err: (error as Error).message },
          'could not store audit events');
      }
    }
  }

  return {
    record(record: AuditRecord): Promise<void> {
      const event: AuditEvent = { ...record, occurredAt: now() };
      logger[warnings.has(event.type) ? 'warn' : 'info']({ audit: true, event: event.type, accountId: event.accountId ?? undefined, email: event.email ?? undefined,
        clientId: event.clientId ?? undefined, ip: event.ip ?? undefined, ...event.details }, event.type);
      queued.push(event);
      if (!nextBatch) {
        const batch: Promise<void> = new Promise<void>((resolve) => setTimeout(resolve, batchWindowMs)).then(writeQueued).finally(() => inFlight.delete(batch));
        inFlight.add(batch);
        nextBatch = batch;
      }
      return nextBatch;
    },
    async settled(): Promise<void> {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
  };
}

export type Audit = ReturnType<typeof createAudit>;
