import type { Audit, AuditRecord } from '../audit.js';
import type { StoredConnection } from '../store/connections.js';
import type { RefusalReason } from './linking.js';

/** Why a federated sign-in ended without signing anyone in; each reason has its page text (failure-page.ts). */
export type FailureReason =
  | RefusalReason | 'unknown_connection' | 'state_mismatch' | 'cancelled' | 'upstream_error' | 'upstream_unavailable'
  | 'invalid_response' | 'interaction_expired' | 'connection_misconfigured';

export type Failure = { failure: FailureReason; connection?: StoredConnection; email?: string | null };

/** Who is signing in where, for the audit trail. */
export type Attempt = { uid: string; clientId: string | null; ip: string };

/** The audit events of federated sign-ins: every refusal is one `federation.refused` with its reason. */
export function createFederationEvents(audit: Audit) {
  return {
    refuse(attempt: Attempt, failure: Failure, details: Record<string, unknown> = {}): Failure {
      void audit.record({
        type: 'federation.refused', email: failure.email ?? null, ip: attempt.ip, clientId: attempt.clientId,
        details: { reason: failure.failure, connection: failure.connection?.id, ...details },
      });
      return failure;
    },
    record(attempt: Attempt, event: Omit<AuditRecord, 'ip' | 'clientId'>): void {
      void audit.record({ ...event, ip: attempt.ip, clientId: attempt.clientId });
    },
  };
}

export type FederationEvents = ReturnType<typeof createFederationEvents>;
