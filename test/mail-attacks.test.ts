import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, textOf } from './support/browser.js';
import { runCliCapturing } from './support/cli.js';
import { createUser } from './support/fixtures.js';
import { startTestServer, testMailSettings, type TestServer } from './support/server.js';
import { linkIn, startSmtpServer, type TestSmtpServer } from './support/smtp.js';

let smtp: TestSmtpServer;
let server: TestServer;

beforeAll(async () => {
  smtp = await startSmtpServer();
  server = await startTestServer({
    mail: { ...testMailSettings, smtpUrl: smtp.url, registration: 'open', resetsPerAddressPerHour: 3, resetsPerIpPerHour: 1_000_000 },
  });
});
afterAll(async () => {
  await server?.close();
  await smtp?.close();
});

const form = (fields: Record<string, string>) => ({
  method: 'POST', body: new URLSearchParams(fields), headers: { 'content-type': 'application/x-www-form-urlencoded' },
});

describe('cross-site request forgery on the mail pages', () => {
  it('refuses every form posted without this browser\'s CSRF token, and does nothing', async () => {
    const user = await createUser(server.services);
    const victim = createBrowser();
    // The victim's browser has the CSRF cookie (it visited the page); the attacker's page knows no token for it.
    await victim.follow(`${server.issuer}/password/forgot`);
    const attacker = createBrowser();
    const attackerField = /name="csrf" value="([^"]+)"/.exec((await attacker.follow(`${server.issuer}/sign-up`)).html)![1]!;
    const posts: Array<[string, Record<string, string>]> = [
      ['/password/forgot', { email: user.email }],
      ['/password/reset', { token: 'x'.repeat(43), password: 'attacker chosen passphrase' }],
      ['/invitation', { token: 'x'.repeat(43), password: 'attacker chosen passphrase' }],
      ['/email/verify', { token: 'x'.repeat(43) }],
      ['/email/verify/resend', { ticket: 'x' }],
      ['/sign-up', { email: 'forged@example.com', password: 'attacker chosen passphrase', given_name: 'F', family_name: 'G' }],
    ];
    for (const [path, fields] of posts) {
      for (const csrf of [undefined, attackerField, '']) {
        const response = await victim.request(`${server.issuer}${path}`, form(csrf === undefined ? fields : { ...fields, csrf }));
        expect(response.status, `${path} with csrf=${csrf}`).toBe(400);
        expect(await response.text()).toContain('did not come from this site');
      }
    }
    await server.services.recovery.settled();
    expect(await server.database('account_tokens').where({ user_id: user.id })).toEqual([]);
    expect(await server.services.accounts.findByEmail('forged@example.com')).toBeUndefined();
  });
});

describe('mail header injection', () => {
  it('sends an invitation only to the invited address, whatever the names hold', async () => {
    const email = `named-${Date.now()}@example.com`;
    const result = await runCliCapturing(['users', 'invite', '--email', email, '--given-name', 'Eve\r\nBcc: thief@evil.example\r\nSubject: pwned', '--family-name', 'X'],
      { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir, ISSUER: server.issuer });
    expect(result.code).toBe(0);
    await server.services.mailSender.sendDue();
    const [mail] = await smtp.waitFor(1, (m) => m.envelopeTo.includes(email));
    expect(mail!.envelopeTo).toEqual([email]);
    expect(mail!.headers.has('bcc')).toBe(false);
    expect(mail!.subject).toBe('You are invited: choose your password');
    expect(smtp.received.some((m) => m.envelopeTo.includes('thief@evil.example'))).toBe(false);
  });

  it('refuses names with line breaks at sign-up and addresses that carry a second one', async () => {
    const browser = createBrowser();
    const page = await browser.follow(`${server.issuer}/sign-up`);
    const refused = await browser.submit(page, 'form[action="/sign-up"]', {
      email: 'newcomer@example.com', password: 'a long enough passphrase', given_name: 'Eve\r\nBcc: thief@evil.example', family_name: 'X',
    });
    expect(refused.status).toBe(400);
    expect(textOf(refused.html, '.error')).toContain('one line');
    for (const email of ['victim@example.com\r\nBcc: thief@evil.example', 'victim@example.com, thief@evil.example']) {
      const forgot = await browser.follow(`${server.issuer}/password/forgot`);
      const answer = await browser.submit(forgot, 'form[action="/password/forgot"]', { email });
      expect(answer.status).toBe(400);
    }
    const invite = await runCliCapturing(['users', 'invite', '--email', 'ok@example.com,thief@evil.example'],
      { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir, ISSUER: server.issuer });
    expect(invite.code).toBe(1);
    await server.services.recovery.settled();
    await server.services.mailSender.sendDue();
    expect(smtp.received.some((m) => m.envelopeTo.includes('thief@evil.example'))).toBe(false);
  });
});

describe('throttling forgot-password', () => {
  it('sends at most PASSWORD_RESET_MAX_PER_ADDRESS_PER_HOUR links, and refuses known and unknown addresses alike', async () => {
    const user = await createUser(server.services);
    const statuses: Record<string, number[]> = {};
    for (const email of [user.email, `unknown-${Date.now()}@example.com`]) {
      statuses[email] = [];
      for (let i = 0; i < 5; i++) {
        const browser = createBrowser();
        const page = await browser.follow(`${server.issuer}/password/forgot`);
        const answer = await browser.submit(page, 'form[action="/password/forgot"]', { email });
        statuses[email]!.push(answer.status);
        if (answer.status === 429) expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
      }
    }
    expect(Object.values(statuses)).toEqual([[200, 200, 200, 429, 429], [200, 200, 200, 429, 429]]);
    await server.services.recovery.settled();
    await server.services.mailSender.sendDue();
    const mails = await smtp.waitFor(3, (m) => m.envelopeTo.includes(user.email));
    expect(mails).toHaveLength(3);
    // Only the newest of the three links works.
    const browser = createBrowser();
    expect((await browser.follow(linkIn(mails[2]!, `${server.issuer}/password/reset?token=`))).status).toBe(200);
  });
});

describe('enumeration by timing', () => {
  it('answers forgot-password and sign-up for known and unknown addresses in the same time', async () => {
    const known = await Promise.all(Array.from({ length: 16 }, () => createUser(server.services)));
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const timeOf = async (path: string, fields: Record<string, string>) => {
      const browser = createBrowser();
      const page = await browser.follow(`${server.issuer}${path}`);
      const started = performance.now();
      const answer = await browser.submit(page, `form[action="${path}"]`, fields);
      const elapsed = performance.now() - started;
      expect(answer.status).toBe(200);
      // The background work (argon2 for every sign-up) and the mail it queued (delivered to the SMTP server this test
      // process runs) must not slow down the next measurement.
      await server.services.recovery.settled();
      await server.services.mailSender.sendDue();
      await server.services.audit.settled();
      return elapsed;
    };
    // Known and unknown are measured back to back (alternating which goes first), so both see the same load on this
    // shared machine; the median of the pairs' differences is what an attacker could learn.
    const differences = { reset: [] as number[], signUp: [] as number[] };
    const signUp = { password: 'a long enough passphrase', given_name: 'T', family_name: 'T' };
    for (let round = 0; round < known.length; round++) {
      const unknown = `nobody-${round}-${Date.now()}@example.com`;
      const pair = async (path: string, fields: (email: string) => Record<string, string>) => {
        const order = round % 2 === 0 ? [known[round]!.email, unknown] : [unknown, known[round]!.email];
        const times: Record<string, number> = {};
        for (const email of order) times[email] = await timeOf(path, fields(email));
        return times[known[round]!.email]! - times[unknown]!;
      };
      differences.reset.push(await pair('/password/forgot', (email) => ({ email })));
      differences.signUp.push(await pair('/sign-up', (email) => ({ ...signUp, email })));
    }
    // The answer never waits for the lookup, a transaction or a hash: what is left is noise, below one argon2 hash.
    expect(Math.abs(median(differences.reset))).toBeLessThan(30);
    expect(Math.abs(median(differences.signUp))).toBeLessThan(30);
  }, 180_000);
});
