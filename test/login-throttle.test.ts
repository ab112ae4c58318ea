import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLoginThrottle, type Lock, type LoginThrottle } from '../src/accounts/login-throttle.js';
import { loadConfig, type LoginThrottleSettings } from '../src/config.js';
import { migrateDatabase, openDatabase, type Database } from '../src/database.js';
import { openServices } from '../src/services.js';
import { createCounterStore } from '../src/store/counters.js';
import { createBrowser, textOf, type Page } from './support/browser.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { spawnLatchkey, type LatchkeyProcess } from './support/process.js';
import { authorize, discoverRp } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

const minute = 60_000;

/** Log lines of a server, parsed; the audit trail's sign_in.* events say which attempts had their password checked. */
function auditEvents(output: string[]) {
  return output.flatMap((chunk) => chunk.split('\n')).filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { event?: string; pid?: number; scope?: string });
}
const countOf = (events: Array<{ event?: string }>, type: string) => events.filter((event) => event.event === type).length;
/** Attempts whose password was checked: each is exactly one sign_in.failure or sign_in.success. */
const verifications = (events: Array<{ event?: string }>) => countOf(events, 'sign_in.failure') + countOf(events, 'sign_in.success');

/** A test server whose clock the test moves, behind one trusted proxy so each browser can name its own IP. */
async function startThrottledServer(settings: Partial<LoginThrottleSettings>, overrides: Parameters<typeof startTestServer>[0] = {}) {
  const clock = { time: Date.now() };
  const lines: string[] = [];
  const server = await startTestServer({
    trustedProxyCount: 1,
    loginThrottle: {
      pairMaxFailures: 3, lockSeconds: 60, lockMaxSeconds: 240, accountMaxFailuresPerHour: 1000, ipMaxFailuresPerDay: 1000,
      ipMaxAttemptsPerMinute: 1000, accountMaxAttemptsPerMinute: 1000, ...settings,
    },
    ...overrides,
  }, undefined, { logDestination: { write: (line: string) => void lines.push(line) }, now: () => clock.time });
  const client = await createClient(server.services, { skipConsent: true });
  const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
  /** One sign-in attempt through the real login form, from a fresh browser at `ip`. */
  const attempt = async (email: string, pass: string, ip = '192.0.2.1'): Promise<Page> =>
    (await authorize(rp, createBrowser({ headers: { 'x-forwarded-for': ip } }), { email, password: pass })).page;
  return { server, rp, clock, attempt, events: () => auditEvents(lines) };
}

const signedIn = (page: Page) => page.url.startsWith('http://localhost:8765/callback');

describe('login throttling on the hosted form', () => {
  let throttled: Awaited<ReturnType<typeof startThrottledServer>>;
  beforeAll(async () => {
    throttled = await startThrottledServer({ accountMaxFailuresPerHour: 10 });
  });
  afterAll(() => throttled.server.close());

  it('locks the account for this IP after a few failures: 429, Retry-After and a readable message, even for the right password', async () => {
    const { server, attempt } = throttled;
    const user = await createUser(server.services);
    for (let i = 1; i < 3; i++) {
      const page = await attempt(user.email, `wrong password ${i}`);
      expect(page.status).toBe(200);
      expect(textOf(page.html, '.error')).toBe('Incorrect email or password.');
    }
    const locked = await attempt(user.email, 'wrong password again');
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toBe('60');
    expect(textOf(locked.html, '.error')).toBe('Too many attempts, try again in 1 minute.');
    expect(locked.html).toContain('name="password"');

    const rightPassword = await attempt(user.email, password);
    expect(rightPassword.status).toBe(429);
    expect(rightPassword.url).toContain('/interaction/');
    // Another address is not locked out.
    expect(signedIn(await attempt(user.email, password, '192.0.2.200'))).toBe(true);
  });

  it('allows one attempt after each lock and doubles the lock with every further failure, up to the maximum', async () => {
    const { server, clock, attempt } = throttled;
    const user = await createUser(server.services);
    const ip = '192.0.2.2';
    for (let i = 0; i < 3; i++) await attempt(user.email, `wrong password ${i}`, ip);
    const seen: string[] = [];
    for (let lock = 60; seen.length < 3; lock = Number(seen.at(-1))) {
      clock.time += lock * 1000 - 1000;
      expect((await attempt(user.email, 'too early', ip)).status).toBe(429);
      clock.time += 1000;
      const page = await attempt(user.email, 'still the wrong password', ip);
      expect(page.status).toBe(429);
      seen.push(page.headers.get('retry-after')!);
    }
    // 60 seconds, then twice that after each failure, never more than LOGIN_LOCK_MAX_SECONDS (240).
    expect(seen).toEqual(['120', '240', '240']);
    clock.time += 240_000;
    expect(signedIn(await attempt(user.email, password, ip))).toBe(true);
  });

  it('forgets the failures of an account and IP after a successful sign-in', async () => {
    const { server, attempt } = throttled;
    const user = await createUser(server.services);
    for (let round = 0; round < 3; round++) {
      for (let i = 1; i < 3; i++) expect((await attempt(user.email, `wrong password ${i}`, '192.0.2.3')).status).toBe(200);
      expect(signedIn(await attempt(user.email, password, '192.0.2.3'))).toBe(true);
    }
  });

  it('counts unknown emails like known ones, so the throttle does not reveal which accounts exist', async () => {
    const pages = [];
    for (let i = 0; i < 4; i++) pages.push(await throttled.attempt('nobody-here@example.com', `guess ${i}`, '192.0.2.4'));
    expect(pages.map((page) => page.status)).toEqual([200, 200, 429, 429]);
  });

  it('checks at most LOGIN_PAIR_MAX_FAILURES passwords of 400 simultaneous guesses from one IP; the right one, sent while they run, does not sign in', async () => {
    const { server, attempt, events } = throttled;
    const user = await createUser(server.services);
    const ip = '192.0.2.5';
    const before = verifications(events());
    let firstRefusal = () => {};
    const refused = new Promise<void>((resolve) => { firstRefusal = resolve; });
    const guesses = Promise.all(Array.from({ length: 399 }, (_, i) => attempt(user.email, `wrong password ${i}`, ip).then((page) => {
      if (page.status === 429) firstRefusal();
      return page;
    })));
    // Once one guess has been refused, the limit is reached; the right password joins the guesses still running.
    await Promise.race([refused, guesses]);
    const rightOne = attempt(user.email, password, ip);
    const pages = [...await guesses, await rightOne];

    expect(verifications(events()) - before).toBeLessThanOrEqual(3);
    expect(pages.filter((page) => page.status === 429).length).toBeGreaterThanOrEqual(397);
    expect(pages.some(signedIn)).toBe(false);
    expect(pages.at(-1)!.status).toBe(429);
  }, 120_000);

  it('does not let concurrent wrong guesses from one IP lock the account for other IPs', async () => {
    const { server, attempt } = throttled;
    const user = await createUser(server.services);
    // 110 at once from one address, against an account limit of 10 failures an hour: only its pair's 3 count.
    const pages = await Promise.all(Array.from({ length: 110 }, (_, i) => attempt(user.email, `wrong password ${i}`, '198.51.100.1')));
    expect(pages.filter((page) => page.status !== 429)).toHaveLength(2);
    expect(signedIn(await attempt(user.email, password, '198.51.100.2'))).toBe(true);
  }, 60_000);

  it('gives the account its failure back after a successful sign-in, so successes never lock anyone', async () => {
    const { server, attempt } = throttled;
    const user = await createUser(server.services);
    // Each success from a new address would otherwise be an eleventh "failure" of the account's ten an hour.
    for (let i = 0; i < 12; i++) expect(signedIn(await attempt(user.email, password, `203.0.113.${i + 1}`))).toBe(true);
    for (let i = 0; i < 9; i++) await attempt(user.email, 'wrong password', `203.0.113.${100 + (i % 3)}`);
    expect(signedIn(await attempt(user.email, password, '203.0.113.200'))).toBe(true);
  });
});

/** One after the other: this server's hashing queue holds a single password. */
async function createUsers(server: TestServer, count: number) {
  const users = [];
  for (let i = 0; i < count; i++) users.push(await createUser(server.services));
  return users;
}

describe('limits on all sign-in attempts, successful ones included', () => {
  let throttled: Awaited<ReturnType<typeof startThrottledServer>>;
  beforeAll(async () => {
    throttled = await startThrottledServer({ ipMaxAttemptsPerMinute: 4, accountMaxAttemptsPerMinute: 3 }, { passwordHashQueueLength: 1 });
  });
  afterAll(() => throttled.server.close());

  it('limits the sign-ins of one account per minute, from any IP', async () => {
    const { server, clock, attempt, events } = throttled;
    const user = await createUser(server.services);
    for (let i = 0; i < 3; i++) expect(signedIn(await attempt(user.email, password, `198.51.100.${10 + i}`))).toBe(true);
    const refused = await attempt(user.email, password, '198.51.100.13');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(textOf(refused.html, '.error')).toBe('Too many attempts, try again in 1 minute.');
    expect(events().filter((event) => event.event === 'sign_in.throttled').at(-1)).toMatchObject({ scope: 'account-attempts' });
    clock.time += minute;
    expect(signedIn(await attempt(user.email, password, '198.51.100.13'))).toBe(true);
  });

  it('limits the sign-ins from one IP per minute, over all accounts', async () => {
    const { server, attempt } = throttled;
    const users = await createUsers(server, 5);
    for (const user of users.slice(0, 4)) expect(signedIn(await attempt(user.email, password, '198.51.100.20'))).toBe(true);
    expect((await attempt(users[4].email, password, '198.51.100.20')).status).toBe(429);
    expect(signedIn(await attempt(users[4].email, password, '198.51.100.21'))).toBe(true);
  });

  it('answers 503 with Retry-After on the login page when too many password checks wait, and takes no attempt from anyone', async () => {
    const { server, attempt } = throttled;
    const users = await createUsers(server, 30);
    // Thirty at once from thirty addresses: a hashing slot or two and one place in the queue (PASSWORD_HASH_QUEUE_LENGTH=1).
    const pages = await Promise.all(users.map((user, i) => attempt(user.email, password, `198.51.100.${30 + i}`)));
    const busy = pages.filter((page) => page.status === 503);
    expect(pages.filter((page) => page.status >= 500 && page.status !== 503)).toEqual([]);
    expect(busy.length).toBeGreaterThan(0);
    expect(pages.every((page) => signedIn(page) || page.status === 503)).toBe(true);
    for (const page of busy) {
      expect(page.headers.get('retry-after')).toBe('5');
      expect(textOf(page.html, '.error')).toBe('Latchkey is busy right now. Try again in a few seconds.');
      expect(page.html).toContain('name="password"');
    }
    // A busy answer checked no password and took no place in any counter: each of them signs in twice more within
    // the minute, which the attempt limits (3 per account, 4 per IP) allow only if the refused try was given back.
    for (const [i, user] of users.entries()) {
      if (signedIn(pages[i])) continue;
      for (let again = 0; again < 3; again++) expect(signedIn(await attempt(user.email, password, `198.51.100.${30 + i}`))).toBe(true);
    }
  }, 60_000);
});

describe('the throttle on the shared counter store', () => {
  let dir: string;
  let database: TestDatabase;
  const opened: Database[] = [];
  const settings: LoginThrottleSettings = {
    pairMaxFailures: 3, lockSeconds: 60, lockMaxSeconds: 240, accountMaxFailuresPerHour: 8, ipMaxFailuresPerDay: 12,
    ipMaxAttemptsPerMinute: 1000, accountMaxAttemptsPerMinute: 1000,
  };
  let time = Date.now();

  /** A second "instance": its own connection pool and counter store on the same database. */
  async function instance() {
    await migrateDatabase(database.url);
    const db = openDatabase(database.url);
    opened.push(db);
    return createCounterStore(db);
  }
  const throttleOn = (counters: ReturnType<typeof createCounterStore>) => createLoginThrottle({ counters, settings, now: () => time });

  /** An attempt whose password turns out wrong: the lock that refused it, or the one its failure completed. */
  async function fail(throttle: LoginThrottle, email: string, ip: string): Promise<Lock | undefined> {
    const reserved = await throttle.reserve(email, ip);
    return 'lock' in reserved ? reserved.lock : reserved.attempt.failed();
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

  it('tells exactly `limit` of 200 simultaneous reservations from two instances that they are within it', async () => {
    const [first, second] = [await instance(), await instance()];
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? first : second).reserve('shared', { limit: 7, windowMs: minute }, time)));
    expect(results.filter((result) => result.isWithin)).toHaveLength(7);
    expect(results.filter((result) => !result.isWithin).every((result) => result.endsAt === time + minute)).toBe(true);
    expect(await first.count('shared', time)).toBe(7);
    await second.refund(['shared'], time);
    expect((await first.reserve('shared', { limit: 7, windowMs: minute }, time)).isWithin).toBe(true);
    expect((await first.reserve('shared', { limit: 7, windowMs: minute }, time + minute)).isWithin).toBe(true);
    expect(await second.count('shared', time + minute)).toBe(1);
  });

  it('reserves under the rule of the level it reads in the same statement, exactly as a reservation under that rule alone', async () => {
    const counters = await instance();
    const rules = [{ limit: 2, windowMs: minute, lockMs: 5_000 }, { limit: 1, windowMs: 7_000, lockMs: 7_000 }, { limit: 1, windowMs: 9_000, lockMs: 9_000 }];
    for (const level of [0, 1, 2, 5]) {
      const [merged, alone, levelKey] = [`merged-${level}`, `alone-${level}`, `level-${level}`];
      for (let i = 0; i < level; i++) await counters.increment(levelKey, minute, time);
      for (let attempt = 0; attempt < 3; attempt++) {
        const expected = await counters.reserve(alone, rules[Math.min(level, rules.length - 1)], time);
        const got = await counters.reserveByLevel(merged, levelKey, rules, time);
        expect(got).toEqual(expected.isWithin ? { ...expected, level } : expected);
      }
    }
    // A level whose window has ended counts as none.
    expect(await counters.reserveByLevel('merged-later', 'level-5', rules, time + minute)).toMatchObject({ isWithin: true, level: 0, endsAt: time + 2 * minute });
  });

  it('runs one statement for the pair (its lock level and its reservation) and one per other counter', async () => {
    await migrateDatabase(database.url);
    const db = openDatabase(database.url);
    opened.push(db);
    let statements = 0;
    const { rows, run } = db.statements;
    db.statements.rows = (sql, bindings) => (statements += 1, rows(sql, bindings));
    db.statements.run = (sql, bindings) => (statements += 1, run(sql, bindings));
    const throttle = throttleOn(createCounterStore(db));
    const reserved = await throttle.reserve('counted@example.com', '192.0.2.60');
    expect(statements).toBe(5);
    if (!('attempt' in reserved)) throw new Error('the attempt was refused');
    statements = 0;
    await reserved.attempt.succeeded();
    expect(statements).toBe(2);
  });

  it('allows one attempt after the first lock when the first lock is already the longest', async () => {
    const throttle = createLoginThrottle({ counters: await instance(), settings: { ...settings, lockMaxSeconds: 60 }, now: () => time });
    const [email, ip] = ['flat@example.com', '192.0.2.61'];
    for (let i = 0; i < 2; i++) expect(await fail(throttle, email, ip)).toBeUndefined();
    expect(await fail(throttle, email, ip)).toEqual({ scope: 'pair', retryAfterSeconds: 60 });
    time += minute;
    expect(await fail(throttle, email, ip)).toEqual({ scope: 'pair', retryAfterSeconds: 60 });
    expect(await throttle.reserve(email, ip)).toEqual({ lock: { scope: 'pair', retryAfterSeconds: 60 } });
  });

  it('shares the pair between instances: failures recorded by one lock the pair at the other', async () => {
    const [first, second] = [throttleOn(await instance()), throttleOn(await instance())];
    expect(await fail(first, 'shared@example.com', '192.0.2.1')).toBeUndefined();
    expect(await fail(second, 'SHARED@example.com', '192.0.2.1')).toBeUndefined();
    expect(await fail(first, 'shared@example.com', '192.0.2.1')).toEqual({ scope: 'pair', retryAfterSeconds: 60 });
    expect(await second.reserve('shared@example.com', '192.0.2.1')).toEqual({ lock: { scope: 'pair', retryAfterSeconds: 60 } });
    expect(await second.reserve('shared@example.com', '192.0.2.2')).toHaveProperty('attempt');
  });

  it('lets one IP reach the account counter only as fast as its pair allows, however many guesses it sends at once', async () => {
    const counters = await instance();
    const throttle = throttleOn(counters);
    const email = 'victim@example.com';
    const locks = await Promise.all(Array.from({ length: 50 }, () => fail(throttle, email, '198.51.100.1')));
    expect(locks.filter((lock) => lock?.scope === 'pair')).toHaveLength(48);
    // Each IP stops at its pair limit; it takes ceil(8 / 3) = 3 addresses to reach the account limit.
    for (let i = 0; i < 3; i++) await fail(throttle, email, '198.51.100.2');
    const probe = await throttle.reserve(email, '203.0.113.9');
    if (!('attempt' in probe)) throw new Error(`a third address was refused: ${JSON.stringify(probe)}`);
    await probe.attempt.abandoned();
    await fail(throttle, email, '198.51.100.3');
    expect(await fail(throttle, email, '198.51.100.3')).toMatchObject({ scope: 'account' });
    const refused = await throttle.reserve(email, '203.0.113.10');
    expect(refused).toMatchObject({ lock: { scope: 'account' } });
    expect((refused as { lock: Lock }).lock.retryAfterSeconds).toBeGreaterThan(3500);
  });

  it('locks an IP that sprays failures over many accounts', async () => {
    const throttle = throttleOn(await instance());
    const ip = '192.0.2.77';
    for (let i = 1; i < 12; i++) expect(await fail(throttle, `spray${i}@example.com`, ip)).toBeUndefined();
    expect(await fail(throttle, 'spray-last@example.com', ip)).toMatchObject({ scope: 'ip' });
    expect(await throttle.reserve('fresh@example.com', ip)).toMatchObject({ lock: { scope: 'ip' } });
    expect(await throttle.reserve('fresh@example.com', '192.0.2.78')).toHaveProperty('attempt');
  });

  it('clears the pair on success but keeps the account and IP counts', async () => {
    const throttle = throttleOn(await instance());
    await fail(throttle, 'reset@example.com', '192.0.2.9');
    await fail(throttle, 'reset@example.com', '192.0.2.9');
    const success = await throttle.reserve('reset@example.com', '192.0.2.9');
    if (!('attempt' in success)) throw new Error('the third attempt was refused');
    await success.attempt.succeeded();
    await fail(throttle, 'reset@example.com', '192.0.2.9');
    expect(await fail(throttle, 'reset@example.com', '192.0.2.9')).toBeUndefined();
    expect(await fail(throttle, 'reset@example.com', '192.0.2.9')).toMatchObject({ scope: 'pair' });
  });
});

/** Fires `count` wrong guesses at once from one IP (127.0.0.1) at the given servers, spread over them in turn. */
async function guessAtOnce(issuers: string[], clientId: string, clientSecret: string, email: string, count: number) {
  const rps = await Promise.all(issuers.map((issuer) => discoverRp(issuer, clientId, clientSecret)));
  return Promise.all(Array.from({ length: count }, (_, i) =>
    authorize(rps[i % rps.length], createBrowser(), { email, password: `wrong password ${i}` }).then(({ page }) => page)));
}

/** Waits until the processes have logged every attempt (pino writes asynchronously); bounded, no fixed sleep. */
async function loggedAttempts(servers: LatchkeyProcess[], count: number) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const events = auditEvents(servers.map((server) => server.output()));
    if (countOf(events, 'sign_in.failure') + countOf(events, 'sign_in.throttled') >= count || Date.now() > deadline) return events;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the throttle across processes', () => {
  let dir: string;
  let database: TestDatabase;
  let env: Record<string, string>;
  let fixture: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-throttle-processes-'));
    database = await createTestDatabase(dir);
    env = { DATABASE_URL: database.url, KEYS_DIR: path.join(dir, 'keys'), LOGIN_PAIR_MAX_FAILURES: '4', LOG_LEVEL: 'info' };
    const services = await openServices(loadConfig(env), { logDestination: { write: () => undefined } });
    const client = await createClient(services, { skipConsent: true });
    fixture = { clientId: client.clientId, clientSecret: client.clientSecret! };
    await services.close();
  });
  afterAll(async () => {
    await database.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Each test guesses for a user of its own. */
  async function newUser() {
    const services = await openServices(loadConfig(env), { logDestination: { write: () => undefined } });
    const user = await createUser(services);
    await services.close();
    return user.email;
  }

  it('checks at most LOGIN_PAIR_MAX_FAILURES of 100 simultaneous guesses served by two worker processes', async () => {
    const instance = await spawnLatchkey({ ...env, WORKERS: '2' });
    try {
      const deadline = Date.now() + 20_000;
      while (instance.servingLines().length < 2) {
        if (Date.now() > deadline) throw new Error(`second worker did not start:\n${instance.output()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const email = await newUser();
      const pages = await guessAtOnce([`http://localhost:${instance.port}`], fixture.clientId, fixture.clientSecret, email, 100);
      expect(pages.filter((page) => page.status === 429).length).toBeGreaterThanOrEqual(96);
      const events = await loggedAttempts([instance], 100);
      expect(countOf(events, 'sign_in.failure')).toBe(4);
      expect(countOf(events, 'sign_in.throttled')).toBe(96);
      // Both workers served the guesses.
      expect(new Set(events.filter((event) => event.event?.startsWith('sign_in.')).map((event) => event.pid)).size).toBe(2);
    } finally {
      instance.child.kill('SIGTERM');
      await instance.exited;
    }
  }, 90_000);

  it('checks at most LOGIN_PAIR_MAX_FAILURES of 100 simultaneous guesses served by two instances on one database', async () => {
    const instances = [await spawnLatchkey(env), await spawnLatchkey(env)];
    try {
      const email = await newUser();
      const issuers = instances.map((instance) => `http://localhost:${instance.port}`);
      const pages = await guessAtOnce(issuers, fixture.clientId, fixture.clientSecret, email, 100);
      expect(pages.filter((page) => page.status === 429).length).toBeGreaterThanOrEqual(96);
      const events = await loggedAttempts(instances, 100);
      expect(countOf(events, 'sign_in.failure')).toBe(4);
      expect(countOf(events, 'sign_in.throttled')).toBe(96);
      for (const instance of instances) expect(instance.output()).toContain('sign_in.throttled');
    } finally {
      for (const instance of instances) instance.child.kill('SIGTERM');
      await Promise.all(instances.map((instance) => instance.exited));
    }
  }, 90_000);
});
