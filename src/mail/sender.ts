import type { Logger } from 'pino';
import type { Audit } from '../audit.js';
import type { MailSettings } from '../config.js';
import type { OutboxMail, OutboxStore } from '../store/mail-outbox.js';
import type { MailTransport } from './transport.js';

/** Mails claimed per round. */
const batchSize = 10;

export type MailSender = ReturnType<typeof createMailSender>;

/**
 * The sender loop: claims due mails from the outbox (atomically, so of several processes or instances sharing one
 * database each mail goes to one), delivers them and records the outcome. A failed delivery is retried after
 * retryBaseSeconds·2^(attempt-1) (at most retryMaxSeconds); after maxAttempts the mail is `failed`, with an audit
 * event and an error line. A claim is a lease: a process that dies mid-delivery leaves a claim that expires, and
 * the mail is delivered by whoever claims it next, so a crash loses nothing. The lease outlasts any delivery
 * (every SMTP wait gives up after smtpTimeoutMs, and a delivery has a handful of them).
 */
export function createMailSender(deps: {
  outbox: OutboxStore; transport: MailTransport; audit: Audit; logger: Logger; now: () => number;
  settings: Pick<MailSettings, 'maxAttempts' | 'retryBaseSeconds' | 'retryMaxSeconds' | 'smtpTimeoutMs'>;
}) {
  const { outbox, transport, audit, logger, now, settings } = deps;
  const leaseMs = settings.smtpTimeoutMs * 10;
  let running: Promise<number> | undefined;
  let isWanted = false;
  let wakeUp: () => void = () => undefined;
  let timer: NodeJS.Timeout | undefined;

  const retryDelayMs = (attempts: number) => Math.min(settings.retryBaseSeconds * 2 ** Math.min(attempts - 1, 30), settings.retryMaxSeconds) * 1000;

  async function deliver(mail: OutboxMail, leaseUntil: number): Promise<void> {
    try {
      await transport.deliver(mail);
    } catch (error) {
      const reason = (error as Error).message.slice(0, 500);
      if (mail.attempts >= settings.maxAttempts) {
        await outbox.markFailed(mail.id, leaseUntil, reason);
        logger.error({ event: 'mail.failed', mailId: mail.id, kind: mail.kind, to: mail.recipient, attempts: mail.attempts, err: reason }, 'mail could not be delivered; giving up');
        void audit.record({ type: 'mail.failed', email: mail.recipient, details: { mailId: mail.id, kind: mail.kind, attempts: mail.attempts, error: reason } });
        return;
      }
      const nextAttemptAt = now() + retryDelayMs(mail.attempts);
      await outbox.markRetry(mail.id, leaseUntil, nextAttemptAt, reason);
      logger.warn({ event: 'mail.retry', mailId: mail.id, kind: mail.kind, attempts: mail.attempts, nextAttemptAt: new Date(nextAttemptAt).toISOString(), err: reason },
        'mail delivery failed; will retry');
      return;
    }
    await outbox.markSent(mail.id, leaseUntil, now());
    logger.info({ event: 'mail.sent', mailId: mail.id, kind: mail.kind, to: mail.recipient, attempts: mail.attempts }, 'mail sent');
  }

  /** Claims and delivers every mail due now, round after round; resolves with how many were tried. */
  async function sendDue(): Promise<number> {
    let tried = 0;
    for (;;) {
      const leaseUntil = now() + leaseMs;
      const claimed = await outbox.claimDue(now(), leaseUntil, batchSize);
      for (const mail of claimed) await deliver(mail, leaseUntil);
      tried += claimed.length;
      if (claimed.length < batchSize) return tried;
    }
  }

  /** One round at a time; a wake-up during a round runs another right after it. */
  function run(): Promise<number> {
    isWanted = true;
    running ??= (async () => {
      let tried = 0;
      try {
        while (isWanted) {
          isWanted = false;
          tried += await sendDue();
        }
      } finally {
        running = undefined;
      }
      return tried;
    })();
    return running;
  }

  return {
    /** Delivers what is due now (tests call this with the clock where they want it). */
    sendDue: run,

    /** Polls every `intervalMs`, and at once when woken, until stopped. */
    start(intervalMs: number): void {
      const logFailure = (error: unknown) => logger.error({ event: 'mail.sender_failed', err: (error as Error).message }, 'mail sender round failed');
      const round = () => {
        run().catch(logFailure);
      };
      timer = setInterval(round, intervalMs);
      timer.unref();
      wakeUp = round;
      round();
    },

    /** Stops polling and waits for the round in flight (its mail is marked sent or scheduled again). */
    async stop(): Promise<void> {
      clearInterval(timer);
      wakeUp = () => undefined;
      await running?.catch(() => undefined);
      transport.close();
    },

    /** A new mail was committed: deliver it now rather than at the next poll (no-op until started). */
    wake: () => wakeUp(),
  };
}
