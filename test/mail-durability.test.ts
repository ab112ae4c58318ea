import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openServices } from '../src/services.js';
import { createBrowser } from './support/browser.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { createUser } from './support/fixtures.js';
import { spawnLatchkey, type LatchkeyProcess } from './support/process.js';
import { startSmtpServer, type TestSmtpServer } from './support/smtp.js';

let dir: string;
let database: TestDatabase;
let env: Record<string, string>;
let smtpPort: number;
const processes: LatchkeyProcess[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-mail-durability-'));
  database = await createTestDatabase(dir);
  // A port an SMTP server listened on a moment ago, closed now: the relay is down.
  const probe = await startSmtpServer();
  smtpPort = probe.port;
  await probe.close();
  env = {
    DATABASE_URL: database.url,
    KEYS_DIR: path.join(dir, 'keys'),
    SMTP_URL: `smtp://localhost:${smtpPort}?tls=false`,
    EMAIL_FROM: 'Latchkey <login@example.com>',
    SMTP_TIMEOUT: '2',
    MAIL_RETRY_BASE_SECONDS: '1',
    MAIL_RETRY_MAX_SECONDS: '1',
    MAIL_MAX_ATTEMPTS: '100',
  };
}, 30_000);

afterAll(async () => {
  for (const child of processes) if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
  await Promise.all(processes.map((child) => child.exited));
  await database?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<LatchkeyProcess> {
  const child = await spawnLatchkey(env);
  processes.push(child);
  return child;
}

describe('the outbox across an SMTP outage and a crash', () => {
  it('answers resets at once while SMTP is down, survives SIGKILL, and two instances then deliver every mail exactly once', async () => {
    const services = await openServices(loadConfig(env));
    const users = await Promise.all(Array.from({ length: 6 }, () => createUser(services)));
    await services.close();

    const first = await start();
    const issuer = `http://localhost:${first.port}`;
    for (const user of users) {
      const browser = createBrowser();
      const page = await browser.follow(`${issuer}/password/forgot`);
      const started = performance.now();
      const answer = await browser.submit(page, 'form[action="/password/forgot"]', { email: user.email });
      expect(answer.status).toBe(200);
      // A relay that refuses connections never slows the person's request.
      expect(performance.now() - started).toBeLessThan(1500);
    }
    // Wait until every link is queued and at least one delivery has failed, then kill the process mid-retry.
    const check = await openServices(loadConfig(env));
    try {
      await expect.poll(async () => (await check.mail.list(100)).filter((mail) => mail.kind === 'password-reset').length, { timeout: 10_000 }).toBe(users.length);
      await expect.poll(async () => (await check.mail.list(100)).some((mail) => mail.lastError !== null), { timeout: 10_000 }).toBe(true);
    } finally {
      await check.close();
    }
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');

    const smtp: TestSmtpServer = await startSmtpServer({ mode: 'accept' }, smtpPort);
    try {
      await Promise.all([start(), start()]);
      const received = await smtp.waitFor(users.length, (mail) => mail.subject === 'Reset your password', 30_000);
      // A row is marked sent only after the SMTP server's 250, and the test server records a mail before it answers:
      // once every row is sent, every delivery either instance made is in, and no row is left for either to claim.
      const outbox = await openServices(loadConfig(env));
      try {
        await expect.poll(async () => (await outbox.mail.list(100))
          .filter((mail) => mail.kind === 'password-reset').every((mail) => mail.status === 'sent'), { timeout: 10_000 }).toBe(true);
      } finally {
        await outbox.close();
      }
      const resets = smtp.received.filter((mail) => mail.subject === 'Reset your password');
      expect(resets).toHaveLength(users.length);
      expect(new Set(resets.map((mail) => mail.envelopeTo[0])).size).toBe(users.length);
      expect(new Set(resets.map((mail) => mail.messageId)).size).toBe(users.length);
      expect(received.length).toBe(users.length);
    } finally {
      await smtp.close();
    }
  }, 90_000);
});
