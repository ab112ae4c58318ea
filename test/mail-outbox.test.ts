import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSmtpTransport } from '../src/mail/transport.js';
import { openServices } from '../src/services.js';
import { startSmtpServer, type TestSmtpServer } from './support/smtp.js';
import { startTestServer, testMailSettings, type TestServer } from './support/server.js';

const clock = { time: Date.parse('2026-06-01T10:00:00Z') };
const lines: string[] = [];
let smtp: TestSmtpServer;
let server: TestServer;

const message = (to: string, subject = 'Your password was changed') => ({ to, subject, template: 'password-changed', locals: { email: to } });

beforeAll(async () => {
  smtp = await startSmtpServer();
  server = await startTestServer({ mail: { ...testMailSettings, smtpUrl: smtp.url, smtpTimeoutMs: 500, maxAttempts: 3, retryBaseSeconds: 30 } }, undefined, {
    logDestination: { write: (line: string) => void lines.push(line) },
    now: () => clock.time,
  });
});
afterAll(async () => {
  await server?.close();
  await smtp?.close();
});
afterEach(() => smtp.setBehaviour({ mode: 'accept' }));

const outboxRow = async (id: string) => server.database('mail_outbox').where({ id }).first();

describe('the mail outbox', () => {
  it('delivers a queued mail as plain text and HTML, from EMAIL_FROM, with the issuer named and no remote content', async () => {
    await server.services.mail.enqueue(message('ada@example.com'));
    const [mail] = await smtp.waitFor(1, (m) => m.envelopeTo.includes('ada@example.com'));
    expect(mail!.from?.value[0]).toMatchObject({ name: 'Latchkey', address: 'login@example.com' });
    expect(mail!.subject).toBe('Your password was changed');
    expect(mail!.text).toContain(`ada@example.com at ${new URL(server.issuer).host}`);
    expect(mail!.html).toContain('<h1');
    expect(mail!.html).not.toMatch(/<img|src=|<script/i);
    expect(mail!.messageId).toMatch(new RegExp(`@${new URL(server.issuer).hostname}>?$`));
  });

  it('writes nothing when the transaction the mail belongs to is rolled back, and the mail when it commits', async () => {
    await expect(server.services.transactions.run(async (trx) => {
      await server.services.mail.enqueue(message('rolled-back@example.com'), trx);
      throw new Error('the change failed');
    })).rejects.toThrow('the change failed');
    const id = await server.services.transactions.run((trx) => server.services.mail.enqueue(message('committed@example.com'), trx));
    await smtp.waitFor(1, (m) => m.envelopeTo.includes('committed@example.com'));
    expect(await server.database('mail_outbox').where({ recipient: 'rolled-back@example.com' }).first()).toBeUndefined();
    // Delivered: the row stays listed, without the body (which may hold a link).
    await expect.poll(async () => (await outboxRow(id))?.status).toBe('sent');
    expect(await outboxRow(id)).toMatchObject({ text_body: null, html_body: null, attempts: 1 });
  });

  it('retries a mail the SMTP server refused, after the backoff, and delivers it once', async () => {
    smtp.setBehaviour({ mode: 'refuse', refusals: 1 });
    const id = await server.services.mail.enqueue(message('refused@example.com'));
    await expect.poll(async () => (await outboxRow(id))?.attempts).toBe(1);
    await expect.poll(async () => (await outboxRow(id))?.status).toBe('pending');
    expect(Number((await outboxRow(id)).next_attempt_at)).toBe(clock.time + 30_000);
    // Not due yet: nothing is tried.
    await server.services.mailSender.sendDue();
    expect((await outboxRow(id)).attempts).toBe(1);
    clock.time += 30_000;
    await server.services.mailSender.sendDue();
    const delivered = await smtp.waitFor(1, (m) => m.envelopeTo.includes('refused@example.com'));
    expect(delivered).toHaveLength(1);
    expect(await outboxRow(id)).toMatchObject({ status: 'sent', attempts: 2 });
  });

  it('gives up on an SMTP server that hangs after the timeout, and delivers once it answers again', async () => {
    smtp.setBehaviour({ mode: 'hang' });
    const started = Date.now();
    const id = await server.services.mail.enqueue(message('hung@example.com'));
    // Queuing does not wait for the SMTP server.
    expect(Date.now() - started).toBeLessThan(400);
    // A new row is pending too: what shows the attempt timed out is its error.
    await expect.poll(async () => (await outboxRow(id))?.last_error ?? '', { timeout: 5000 }).toMatch(/greeting|timeout/i);
    expect((await outboxRow(id)).status).toBe('pending');
    smtp.setBehaviour({ mode: 'accept' });
    clock.time += 30_000;
    await server.services.mailSender.sendDue();
    await smtp.waitFor(1, (m) => m.envelopeTo.includes('hung@example.com'));
  });

  it('marks a mail failed after MAIL_MAX_ATTEMPTS, with an audit event and an error line', async () => {
    smtp.setBehaviour({ mode: 'refuse', refusals: 100 });
    const id = await server.services.mail.enqueue(message('never@example.com'));
    await expect.poll(async () => (await outboxRow(id))?.last_error).toMatch(/451/);
    for (const wait of [30_000, 60_000]) {
      clock.time += wait;
      await server.services.mailSender.sendDue();
    }
    expect(await outboxRow(id)).toMatchObject({ status: 'failed', attempts: 3, text_body: null });
    await server.services.audit.settled();
    const failedLine = lines.map((line) => JSON.parse(line)).find((line) => line.event === 'mail.failed' && line.mailId === id);
    expect(failedLine).toMatchObject({ level: 50, to: 'never@example.com', attempts: 3 });
    const audited = await server.database('audit_events').where({ type: 'mail.failed' });
    expect(audited.map((row) => row.email)).toContain('never@example.com');
  });

  it('sends each mail once when two processes deliver one outbox at the same moment', async () => {
    const other = await openServices(server.config, { now: () => clock.time });
    try {
      const ids = await Promise.all(Array.from({ length: 30 }, (_, n) => other.mail.enqueue(message(`race-${n}@example.com`))));
      await Promise.all([other.mailSender.sendDue(), server.services.mailSender.sendDue(), other.mailSender.sendDue()]);
      // Every sendDue has returned, and the test server records a mail before it answers 250: all deliveries are in.
      const arrived = await smtp.waitFor(30, (m) => m.envelopeTo.some((to) => to.startsWith('race-')));
      const perId = new Map<string, number>();
      for (const mail of smtp.received.filter((m) => m.envelopeTo.some((to) => to.startsWith('race-')))) perId.set(mail.messageId!, (perId.get(mail.messageId!) ?? 0) + 1);
      expect(arrived.length).toBe(30);
      expect([...perId.values()].every((count) => count === 1)).toBe(true);
      expect(perId.size).toBe(ids.length);
    } finally {
      await other.close();
    }
  });
});

describe('TLS', () => {
  it('sends nothing to a server that does not offer STARTTLS unless the URL says ?tls=false', async () => {
    const transport = createSmtpTransport({ smtpUrl: smtp.url.replace('?tls=false', ''), from: 'login@example.com', timeoutMs: 2000, messageIdDomain: () => 'localhost' });
    const mail = {
      id: 'tls-test', kind: 'password-changed', recipient: 'cleartext@example.com', subject: 'x', textBody: 'secret link', htmlBody: null,
      status: 'sending' as const, attempts: 1, nextAttemptAt: 0, leaseUntil: null, lastError: null, createdAt: 0, sentAt: null,
    };
    await expect(transport.deliver(mail)).rejects.toThrow(/STARTTLS/i);
    expect(smtp.received.some((m) => m.envelopeTo.includes('cleartext@example.com'))).toBe(false);
    transport.close();
  });
});

describe('without SMTP_URL (development)', () => {
  it('writes the mail, link and all, to the log', async () => {
    const devLines: string[] = [];
    const dev = await startTestServer({}, undefined, { logDestination: { write: (line: string) => void devLines.push(line) } });
    try {
      await dev.services.mail.enqueue(message('dev@example.com'));
      await expect.poll(() => devLines.some((line) => line.includes('"mail.logged"') && line.includes('dev@example.com'))).toBe(true);
      const logged = devLines.map((line) => JSON.parse(line)).find((line) => line.event === 'mail.logged');
      expect(logged.body).toContain('Your password was changed');
    } finally {
      await dev.close();
    }
  });
});
