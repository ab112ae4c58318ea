import type { Services } from '../services.js';
import type { OutboxMail } from '../store/mail-outbox.js';
import { escapeUnprintable } from '../unprintable.js';
import { table, UsageError, type Output, type Values } from './output.js';

const isoTime = (epochMs: number | null) => (epochMs === null ? null : new Date(epochMs).toISOString());

const publicMail = (mail: OutboxMail) => ({
  id: mail.id, kind: mail.kind, to: mail.recipient, subject: mail.subject, status: mail.status, attempts: mail.attempts,
  createdAt: isoTime(mail.createdAt), sentAt: isoTime(mail.sentAt), nextAttemptAt: mail.status === 'pending' ? isoTime(mail.nextAttemptAt) : null,
  lastError: mail.lastError,
  // Kept only until the mail is delivered: in development (no SMTP_URL) the log and this command show the links.
  text: mail.textBody,
});

function parseLimit(value: unknown): number {
  if (value === undefined) return 50;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 10_000) {
    throw new UsageError(`--limit must be a whole number between 1 and 10000, got "${String(value)}"`);
  }
  return Number(value);
}

export const mailCommands = {
  list: {
    options: { limit: { type: 'string' } },
    async run(values: Values, { mail }: Services, out: Output) {
      const mails = (await mail.list(parseLimit(values.limit))).map(publicMail);
      out.result(mails, [
        ...table(['CREATED', 'STATUS', 'TRIES', 'TO', 'SUBJECT'], mails.map((m) => [m.createdAt ?? '-', m.status, String(m.attempts), m.to, m.subject])),
        ...mails.filter((m) => m.text !== null).flatMap((m) => ['', `--- ${m.status} mail to ${m.to}: ${m.subject}`, ...m.text!.trimEnd().split('\n').map(escapeUnprintable)]),
      ]);
    },
  },
} as const;
