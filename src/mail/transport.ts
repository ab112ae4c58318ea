import type { Transporter } from 'nodemailer';
import type { Logger } from 'pino';
import type { OutboxMail } from '../store/mail-outbox.js';

/** Delivers one mail or throws why it could not. */
export type MailTransport = { deliver(mail: OutboxMail): Promise<void>; close(): void };

/**
 * The nodemailer options of an SMTP_URL (validated by config.ts): smtps:// is TLS from the first byte (port 465);
 * smtp:// must upgrade with STARTTLS before anything is sent (requireTLS: a server that does not offer it, or a
 * man in the middle who strips it, gets nothing) unless `?tls=false` names a local relay reached in clear text.
 * Certificates are verified (Node's defaults).
 */
export function smtpOptions(smtpUrl: string, timeoutMs: number) {
  const url = new URL(smtpUrl);
  const isPlain = url.searchParams.get('tls') === 'false';
  const secure = url.protocol === 'smtps:';
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    secure,
    requireTLS: !secure && !isPlain,
    ignoreTLS: isPlain,
    auth: url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : undefined,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    // No connection is kept between mails: every delivery is its own SMTP session.
    pool: false,
  };
}

/** The message as it goes out: `to` as an address object, so nodemailer never parses it for more recipients. */
function toMessage(mail: OutboxMail, from: string, messageIdDomain: string) {
  return {
    from,
    to: { name: '', address: mail.recipient },
    subject: mail.subject,
    text: mail.textBody ?? '',
    html: mail.htmlBody ?? undefined,
    // Stable across retries: a mail re-sent after a crash between the server's 250 and our bookkeeping can be
    // recognised as the same message.
    messageId: `<${mail.id}@${messageIdDomain}>`,
  };
}

/**
 * nodemailer is imported for the first mail, not at start-up (it is over a megabyte of memory and a tenth of a
 * second of start-up for a server that may send no mail for hours). An import that failed fails that delivery,
 * which the outbox retries, and is tried again then.
 */
export function createSmtpTransport(deps: { smtpUrl: string; from: string; timeoutMs: number; messageIdDomain: () => string }): MailTransport {
  let transporter: Promise<Transporter> | undefined;
  const open = () => (transporter ??= import('nodemailer').then(
    ({ default: nodemailer }) => nodemailer.createTransport(smtpOptions(deps.smtpUrl, deps.timeoutMs)),
    (error: unknown) => {
      transporter = undefined;
      throw error;
    },
  ));
  return {
    async deliver(mail) {
      await (await open()).sendMail(toMessage(mail, deps.from, deps.messageIdDomain()));
    },
    close: () => void transporter?.then((opened) => opened.close(), () => undefined),
  };
}

/**
 * Without SMTP_URL (development only: config.ts refuses mail features in production without it), a mail is
 * written to the log, link and all, so a newcomer can follow it; `latchkey mail list` shows the outbox.
 */
export function createLogTransport(logger: Logger, options: { isProduction: boolean }): MailTransport {
  return {
    async deliver(mail) {
      // In production a mail may still be queued (an operator's action); its body, which may hold a link, is not logged.
      const body = options.isProduction ? undefined : mail.textBody ?? '';
      logger.info({ event: 'mail.logged', mailId: mail.id, kind: mail.kind, to: mail.recipient, subject: mail.subject, body },
        `mail (not sent: SMTP_URL is not set) to ${mail.recipient}: ${mail.subject}${body === undefined ? '' : `\n${body}`}`);
    },
    close: () => undefined,
  };
}
