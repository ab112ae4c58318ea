import { randomUUID } from 'node:crypto';
import type { OutboxMail, OutboxStore } from '../store/mail-outbox.js';
import type { Transaction } from '../store/transactions.js';
import type { MailTemplates } from './templates.js';

/**
 * One mail to one person. `template` names `views/emails/<template>.pug` and `.txt.pug`; `locals` are its values
 * (`issuerName` and `issuer` are added). `to` is an address Latchkey already holds for an account (normalised and
 * checked when the account was made), never parsed for more addresses.
 */
export type MailMessage = {
  to: string;
  /** A catalogue key (locales/en.json), translated like the body. */
  subject: string;
  template: string;
  locals?: Record<string, unknown>;
};

export type Mail = ReturnType<typeof createMail>;

/** A subject is one line: a name or address someone typed cannot add a header through it. */
const oneLine = (text: string) => text.replace(/[\r\n\u2028\u2029\u0085]+/g, ' ').slice(0, 250);

/**
 * The outbox, as the rest of Latchkey uses it: `enqueue` renders the mail and writes it as a pending row — inside
 * the caller's transaction when given, so the mail exists exactly when the change it announces does — and the
 * sender loop (sender.ts) delivers it. Nothing here talks to an SMTP server, so no request waits for one.
 */
export function createMail(deps: {
  outbox: OutboxStore; templates: MailTemplates; issuer: () => string; now: () => number;
  /** Called once a new mail is committed (the sender of this process starts at once instead of at its next poll). */
  onQueued?: () => void;
}) {
  const { outbox, templates, now } = deps;
  return {
    /**
     * Renders and queues `message`; in `trx` when given (the row commits with it, and the sender is woken after the
     * commit). Resolves with the mail's id.
     */
    async enqueue(message: MailMessage, trx?: Transaction): Promise<string> {
      const issuer = deps.issuer();
      const rendered = templates.render(message.template, message.subject, { ...message.locals, issuer, issuerName: new URL(issuer).host });
      const { text, html } = rendered;
      const subject = oneLine(rendered.subject);
      const id = randomUUID();
      await outbox.insert({ id, kind: message.template, recipient: message.to, subject, textBody: text, htmlBody: html, createdAt: now() }, trx);
      if (deps.onQueued) {
        if (trx) trx.executionPromise.then(deps.onQueued, () => undefined);
        else deps.onQueued();
      }
      return id;
    },

    /** The newest mails of the outbox (`latchkey mail list`). */
    list(limit = 50): Promise<OutboxMail[]> {
      return outbox.list(limit);
    },
  };
}
