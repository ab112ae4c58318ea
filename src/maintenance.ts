import type { Logger } from 'pino';
import type { Sessions } from './accounts/sessions.js';
import type { Config } from './config.js';
import type { MailSender } from './mail/sender.js';
import type { ProviderHost } from './oidc/provider-host.js';
import type { AuditEventStore } from './store/audit-events.js';

const purgeIntervalMs = 60_000;
const purgeBatchSize = 500;

const dayMs = 86_400_000;

/** How often the mail sender looks for mails other processes queued, and for retries that are due. */
const mailPollIntervalMs = 1000;
/** Sent and failed mails stay listed (`latchkey mail list`, without their bodies) this long. */
const mailRetentionMs = 30 * dayMs;

export type Maintenance = ReturnType<typeof createMaintenance>;

/**
 * The jobs a running server does on its own: every KEYS_RELOAD_INTERVAL it rebuilds the provider if the keys
 * changed, every minute it purges what has expired, and its mail sender delivers the outbox.
 */
export function createMaintenance(deps: {
  config: Pick<Config, 'auditRetentionDays' | 'keysReloadIntervalSeconds'>;
  sessions: Sessions;
  auditEvents: AuditEventStore;
  deleteExpiredThrottleCounters: (now: number, batchSize: number) => Promise<number>;
  /** Deletes sent and failed mails created before the given time, and spent or expired mailed links. */
  deleteFinishedMails: (before: number, batchSize: number) => Promise<number>;
  deleteExpiredAccountTokens: (now: number, batchSize: number) => Promise<number>;
  mailSender: MailSender;
  deleteExpiredRegistrationTokens: (now: number, batchSize: number) => Promise<number>;
  providerHost: ProviderHost;
  logger: Logger;
}) {
  const { config, sessions, auditEvents, providerHost, logger } = deps;

  /**
   * Deletes rows expired at `now` (oidc-provider rows, throttle counters, registration tokens, audit events past
   * AUDIT_RETENTION_DAYS)
   * in bounded batches and sends logout tokens for the expired sessions; returns how many rows went.
   */
  async function purgeExpired(now = Date.now()): Promise<number> {
    const auditCutoff = now - config.auditRetentionDays * dayMs;
    const purges = [
      async () => {
        const { count, deliveries } = await sessions.purgeExpired(now, purgeBatchSize);
        for (const failed of deliveries.filter((delivery) => !delivery.isDelivered)) {
          logger.warn(`latchkey: back-channel logout of an expired session to client ${failed.clientId} failed: ${failed.error}`);
        }
        return count;
      },
      () => deps.deleteExpiredThrottleCounters(now, purgeBatchSize),
      () => deps.deleteExpiredRegistrationTokens(now, purgeBatchSize),
      () => auditEvents.deleteOlderThan(auditCutoff, purgeBatchSize),
      () => deps.deleteFinishedMails(now - mailRetentionMs, purgeBatchSize),
      () => deps.deleteExpiredAccountTokens(now, purgeBatchSize),
    ];
    let total = 0;
    for (const purge of purges) {
      for (;;) {
        const deleted = await purge();
        total += deleted;
        if (deleted < purgeBatchSize) break;
      }
    }
    return total;
  }

  return {
    purgeExpired,

    /**
     * Starts the timers and the mail sender (they never keep the process alive); returns the function that stops
     * the timers (the services' close() stops the sender, waiting for the mail in flight).
     */
    start(): () => void {
      const logFailure = (what: string) => (error: unknown) => logger.error({ err: (error as Error).message }, `${what} failed`);
      const timers = [
        setInterval(() => providerHost.reloadSigningKeys().catch(logFailure('signing key reload')), config.keysReloadIntervalSeconds * 1000),
        setInterval(() => purgeExpired().catch(logFailure('purge of expired rows')), purgeIntervalMs),
      ];
      for (const timer of timers) timer.unref();
      deps.mailSender.start(mailPollIntervalMs);
      return () => {
        for (const timer of timers) clearInterval(timer);
      };
    },
  };
}
