import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLoginThrottle } from '../src/accounts/login-throttle.js';
import { loadConfig, type LoginThrottleSettings } from '../src/config.js';
import { migrateDatabase, openDatabase, type Database } from '../src/database.js';
import { openServices } from '../src/services.js';
import { throttleLimiters } from '../src/store/login-throttle.js';
import { createBrowser, textOf } from './support/browser.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { spawnLatchkey } from './support/process.js';
import { authorize, discoverRp } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

const settings: LoginThrottleSettings = { pairMaxFailures: 3, lockSeconds: 1, lockMaxSeconds: 2, accountMaxFailuresPerHour: 8, ipMaxFailuresPerDay: 12 };
// Every request of this file comes from 127.0.0.1: the HTTP tests leave the account and IP limits out of reach.
const httpSettings: LoginThrottleSettings = { ...settings, accountMaxFailuresPerHour: 1000, ipMaxFailuresPerDay: 1000 };

let server: TestServer;
let rp: oidc.Configuration;

beforeAll(async () => {
  server = await startTestServer({ loginThrottle: httpSettings });
  const client = await createClient(server.services, { skipConsent: true });
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(() => server.close());

/** One sign-in attempt through the real login form, from a fresh browser. */
async function attempt(email: string, pass: string) {
  const { page } = await authorize(rp, createBrowser(), { email, password: pass });
  return page;
}

const waitSeconds = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000 + 100));

describe('login throttling on the hosted form', () => {
  it('locks the account for this IP after a few failures: 429, Retry-After and a readable message, even for the right password', async () => {
    const user = await createUser(server.services);
    for (let i = 1; i < settings.pairMaxFailures; i++) {
      const page = await attempt(user.email, `wrong password ${i}`);
      expect(page.status).toBe(200);
      expect(textOf(page.html, '.error')).toBe('Incorrect email or password.');
    }
    const locked = await attempt(user.email, 'wrong password again');
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toBe('1');
    expect(textOf(locked.html, '.error')).toBe('Too many attempts, try again in 1 minute.');
    expect(locked.html).toContain('name="password"');

    const rightPassword = await attempt(user.email, password);
    expect(rightPassword.status).toBe(429);
    expect(rightPassword.url).toContain('/interaction/');
  });

  it('doubles the lock with every further failure, up to the maximum', async () => {
    const user = await createUser(server.services);
    for (let i = 0; i < settings.pairMaxFailures; i++) await attempt(user.email, `wrong password ${i}`);
    const seen: string[] = [];
    for (let lock = 1; lock <= 2; lock++) {
      await waitSeconds(Number(seen.at(-1) ?? settings.lockSeconds));
      const page = await attempt(user.email, 'still the wrong password');
      expect(page.status).toBe(429);
      seen.push(page.headers.get('retry-after')!);
    }
    // 1 second, then twice that, then no more than LOGIN_LOCK_MAX_SECONDS.
    expect(seen).toEqual(['2', '2']);
  });

  it('forgets the failures of an account and IP after a successful sign-in', async () => {
    const user = await createUser(server.services);
    for (let round = 0; round < 2; round++) {
      for (let i = 1; i < settings.pairMaxFailures; i++) expect((await attempt(user.email, `wrong password ${i}`)).status).toBe(200);
      const success = await attempt(user.email, password);
      expect(success.url.startsWith('http://localhost:8765/callback')).toBe(true);
    }
  });

  it('counts unknown emails like known ones, so the throttle does not reveal which accounts exist', async () => {
    const pages = [];
    for (let i = 0; i < settings.pairMaxFailures; i++) pages.push(await attempt('nobody-here@example.com', `guess ${i}`));
    expect(pages.map((page) => page.status)).toEqual([200, 200, 429]);
  });
});

describe('the throttle policy on the shared store', () => {
  let dir: string;
  let database: TestDatabase;
  const opened: Database[] = [];

  /** A second "instance": its own connection pool and throttle on the same database. */
  async function instance() {
    await migrateDatabase(database.url);
    const db = openDatabase(database.url);
    opened.push(db);
    return createLoginThrottle(throttleLimiters(db), settings);
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-throttle-'));
    database = await createTestDatabase(dir);
  });
  afterAll(async () => {
    for (const db of opened) await db.destroy();
    await database.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shares counters between instances: failures recorded by one lock the pair at the other', async () => {
    const [first, second] = [await instance(), await instance()];
    await first.recordFailure('shared@example.com', '192.0.2.1');
    await second.recordFailure('SHARED@example.com', '192.0.2.1');
    expect(await first.check('shared@example.com', '192.0.2.1')).toBeUndefined();
    expect(await first.recordFailure('shared@example.com', '192.0.2.1')).toEqual({ scope: 'pair', retryAfterSeconds: 1 });
    expect(await second.check('shared@example.com', '192.0.2.1')).toMatchObject({ scope: 'pair' });
    expect(await second.check('shared@example.com', '192.0.2.2')).toBeUndefined();
  });

  it('locks an account for every IP only after failures from several IPs', async () => {
    const throttle = await instance();
    const email = 'victim@example.com';
    // Each IP stops at its pair limit; it takes ceil(8 / 3) = 3 addresses to reach the account limit.
    for (const ip of ['198.51.100.1', '198.51.100.2']) {
      for (let i = 0; i < settings.pairMaxFailures; i++) await throttle.recordFailure(email, ip);
    }
    expect(await throttle.check(email, '203.0.113.9')).toBeUndefined();
    await throttle.recordFailure(email, '198.51.100.3');
    expect(await throttle.recordFailure(email, '198.51.100.3')).toMatchObject({ scope: 'account' });
    const lock = await throttle.check(email, '203.0.113.9');
    expect(lock).toMatchObject({ scope: 'account' });
    expect(lock!.retryAfterSeconds).toBeGreaterThan(3500);
  });

  it('locks an IP that sprays failures over many accounts', async () => {
    const throttle = await instance();
    const ip = '192.0.2.77';
    for (let i = 1; i < settings.ipMaxFailuresPerDay; i++) expect(await throttle.recordFailure(`spray${i}@example.com`, ip)).toBeUndefined();
    expect(await throttle.recordFailure('spray-last@example.com', ip)).toMatchObject({ scope: 'ip' });
    expect(await throttle.check('fresh@example.com', ip)).toMatchObject({ scope: 'ip' });
    expect(await throttle.check('fresh@example.com', '192.0.2.78')).toBeUndefined();
  });

  it('clears the pair on success but keeps the account and IP counts', async () => {
    const throttle = await instance();
    await throttle.recordFailure('reset@example.com', '192.0.2.9');
    await throttle.recordFailure('reset@example.com', '192.0.2.9');
    await throttle.recordSuccess('reset@example.com', '192.0.2.9');
    await throttle.recordFailure('reset@example.com', '192.0.2.9');
    expect(await throttle.recordFailure('reset@example.com', '192.0.2.9')).toBeUndefined();
  });
});

describe('the throttle across worker processes', () => {
  let dir: string;
  let database: TestDatabase;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-throttle-workers-'));
    database = await createTestDatabase(dir);
  });
  afterAll(async () => {
    await database.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts simultaneous failures served by two workers exactly once each', async () => {
    const env = { DATABASE_URL: database.url, KEYS_DIR: path.join(dir, 'keys'), WORKERS: '2', LOGIN_PAIR_MAX_FAILURES: '6', LOG_LEVEL: 'info' };
    const instance = await spawnLatchkey(env);
    try {
      const deadline = Date.now() + 20_000;
      while (instance.servingLines().length < 2) {
        if (Date.now() > deadline) throw new Error(`second worker did not start:\n${instance.output()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const services = await openServices(loadConfig(env), { logDestination: { write: () => undefined } });
      const client = await createClient(services, { skipConsent: true });
      const user = await createUser(services);
      await services.close();
      const workerRp = await discoverRp(`http://localhost:${instance.port}`, client.clientId, client.clientSecret!);

      // Ten attempts at once: all pass the check before any failure is counted, so exactly the ones counted as
      // failure 6 to 10 are told about the lock. A lost update between the processes would show fewer.
      const pages = await Promise.all(Array.from({ length: 10 }, (_, i) =>
        authorize(workerRp, createBrowser(), { email: user.email, password: `wrong password ${i}` }).then(({ page }) => page)));
      expect(pages.map((page) => page.status).sort()).toEqual([200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);
      expect((await authorize(workerRp, createBrowser(), { email: user.email, password })).page.status).toBe(429);

      const failures = instance.output().split('\n').filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { event?: string; pid: number }).filter((line) => line.event === 'sign_in.failure');
      expect(failures).toHaveLength(10);
      expect(new Set(failures.map((line) => line.pid)).size).toBe(2);
    } finally {
      instance.child.kill('SIGTERM');
      await instance.exited;
    }
  }, 60_000);
});
