import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export type ReceivedMail = ParsedMail & { envelopeTo: string[] };

/**
 * How the test SMTP server answers: `accept` every mail; `refuse` the first `refusals` mails with a temporary
 * 451 and then accept; `hang` (accepts the connection and never greets).
 */
export type SmtpBehaviour = { mode: 'accept' } | { mode: 'refuse'; refusals: number } | { mode: 'hang' };

export type TestSmtpServer = {
  /** SMTP_URL for Latchkey: plain SMTP on localhost (the test server offers no STARTTLS). */
  url: string;
  port: number;
  received: ReceivedMail[];
  /** How many deliveries were refused so far. */
  refused: () => number;
  /** Resolves once `count` mails matching `match` have arrived (fails after `timeoutMs`). */
  waitFor(count: number, match?: (mail: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail[]>;
  setBehaviour(behaviour: SmtpBehaviour): void;
  close(): Promise<void>;
};

/** A real SMTP server (smtp-server) on port 0; what arrives is parsed with mailparser. */
export async function startSmtpServer(initial: SmtpBehaviour = { mode: 'accept' }, port = 0): Promise<TestSmtpServer> {
  let behaviour = initial;
  let refusals = 0;
  const received: ReceivedMail[] = [];
  const waiters = new Set<() => void>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onConnect(_session, callback) {
      // Never calling back leaves the client waiting for the greeting: an SMTP server that hangs.
      if (behaviour.mode !== 'hang') callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (behaviour.mode === 'refuse' && refusals < behaviour.refusals) {
          refusals += 1;
          const error = new Error('try again later') as Error & { responseCode: number };
          error.responseCode = 451;
          callback(error);
          return;
        }
        simpleParser(Buffer.concat(chunks)).then((mail) => {
          received.push({ ...mail, envelopeTo: session.envelope.rcptTo.map((to) => to.address) } as ReceivedMail);
          for (const wake of waiters) wake();
          callback();
        }, callback);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(port, 'localhost', resolve));
  const bound = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://localhost:${bound}?tls=false`,
    port: bound,
    received,
    refused: () => refusals,
    setBehaviour(next) {
      behaviour = next;
      refusals = 0;
    },
    waitFor(count, match = () => true, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = received.filter(match);
          if (found.length < count) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`expected ${count} mails, got ${received.filter(match).length} (${received.length} in all)`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The first link in a mail's text that starts with `prefix`. */
export function linkIn(mail: ParsedMail, prefix: string): string {
  const link = (mail.text ?? '').split(/\s+/).find((word) => word.startsWith(prefix));
  if (!link) throw new Error(`no link starting with ${prefix} in: ${mail.text}`);
  return link;
}
