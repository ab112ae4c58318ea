import type { Logger } from 'pino';
import type { AuditEvent, AuditEventStore } from './store/audit-events.js';

export type AuditRecord = Omit<AuditEvent, 'occurredAt'>;

/** Events that may be an attack in progress are logged at `warn`; the rest at `info`. */
const warnings = new Set(['sign_in.failure', 'sign_in.locked', 'sign_in.throttled', 'token.failure', 'token.replay_detected']);

/**
 * The audit trail: every security event becomes one JSON log line and one `audit_events` row. Recording never
 * throws and callers on the request path do not wait for it: a failed write is logged, the request goes on.
 * `settled()` waits for writes in flight (the CLI before it exits, the server before it closes the pool).
 */
export function createAudit(deps: { events: AuditEventStore; logger: Logger; now?: () => number }) {
  const { events, logger } = deps;
  const now = deps.now ?? Date.now;
  const pending = new Set<Promise<void>>();

  return {
    record(record: AuditRecord): Promise<void> {
      const event: AuditEvent = { ...record, occurredAt: now() };
      logger[warnings.has(event.type) ? 'warn' : 'info']({ audit: true, event: event.type, accountId: event.accountId ?? undefined, email: event.email ?? undefined,
        clientId: event.clientId ?? undefined, ip: event.ip ?? undefined, ...event.details }, event.type);
      const write = events.insert(event).catch((error: Error) => {
        logger.error({ event: 'audit.write_failed', type: event.type, err: error.message }, 'could not store an audit event');
      }).finally(() => pending.delete(write));
      pending.add(write);
      return write;
    },
    async settled(): Promise<void> {
      await Promise.all([...pending]);
    },
  };
}

export type Audit = ReturnType<typeof createAudit>;
