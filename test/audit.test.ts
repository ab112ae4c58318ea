import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAudit } from '../src/audit.js';
import { createLogger } from '../src/logger.js';
import { createAuditEventStore } from '../src/store/audit-events.js';
import { createBrowser } from './support/browser.js';
import { runCliCapturing } from './support/cli.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { authorize, discoverRp, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

const lines: string[] = [];
const logDestination = { write: (line: string) => void lines.push(line) };
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer(
    {
      loginThrottle: {
        pairMaxFailures: 2, lockSeconds: 60, lockMaxSeconds: 3600, accountMaxFailuresPerHour: 1000, ipMaxFailuresPerDay: 1000,
        ipMaxAttemptsPerMinute: 1000, accountMaxAttemptsPerMinute: 1000,
      },
    },
    undefined,
    { logDestination },
  );
});
afterAll(() => server.close());

const logged = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
const eventTypes = () => new Set(logged().filter((line) => line.audit).map((line) => line.event));

const cli = (...argv: string[]) => runCliCapturing(argv, { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir }, logDestination);

describe('the audit trail', () => {
  const secrets: string[] = [];
  let userEmail: string;

  it('logs and stores every security event without a password, token, code or secret', async () => {
    const client = await createClient(server.services);
    secrets.push(client.clientSecret!);
    const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const user = await createUser(server.services);
    userEmail = user.email;
    secrets.push(password);

    // Sign-in failures, then the lock and a refused attempt while locked.
    for (const wrong of ['wrong password one', 'wrong password two', 'wrong password three']) {
      secrets.push(wrong);
      await authorize(rp, createBrowser(), { email: user.email, password: wrong });
    }
    const otherUser = await createUser(server.services);

    // Sign-in, code exchange, refresh, a replayed refresh token, revocation and logout.
    const browser = createBrowser();
    const first = await signIn(rp, browser, { email: otherUser.email, password, consent: true });
    secrets.push(first.callbackUrl.searchParams.get('code')!, first.tokens.access_token, first.tokens.refresh_token!, first.tokens.id_token!);
    const refreshed = await oidc.refreshTokenGrant(rp, first.tokens.refresh_token!);
    secrets.push(refreshed.access_token, refreshed.refresh_token!);
    await expect(oidc.refreshTokenGrant(rp, first.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });

    const second = await signIn(rp, createBrowser(), { email: otherUser.email, password, consent: true });
    secrets.push(second.callbackUrl.searchParams.get('code')!, second.tokens.access_token, second.tokens.refresh_token!, second.tokens.id_token!);
    await oidc.tokenRevocation(rp, second.tokens.refresh_token!);

    const third = await signIn(rp, browser, { email: otherUser.email, password, consent: true });
    secrets.push(third.tokens.access_token, third.tokens.refresh_token!, third.tokens.id_token!);
    const confirm = await browser.follow(oidc.buildEndSessionUrl(rp, { id_token_hint: third.tokens.id_token! }).href);
    await browser.submit(confirm, 'form', { logout: 'yes' });

    // Changes made from the CLI.
    const cliPassword = 'a cli chosen passphrase';
    const newPassword = 'a brand new cli passphrase';
    secrets.push(cliPassword, newPassword);
    expect((await cli('users', 'create', '--email', 'cli-user@example.com', '--password', cliPassword)).code).toBe(0);
    expect((await cli('users', 'set-password', '--email', 'cli-user@example.com', '--password', newPassword)).code).toBe(0);
    expect((await cli('users', 'disable', '--email', 'cli-user@example.com')).code).toBe(0);
    const created = JSON.parse((await cli('clients', 'create', '--client-id', 'audited', '--redirect-uri', 'https://a.example.com/cb', '--json')).stdout);
    secrets.push(created.clientSecret);
    expect((await cli('clients', 'delete', '--client-id', 'audited')).code).toBe(0);

    await server.services.audit.settled();
    expect([...eventTypes()].sort()).toEqual(expect.arrayContaining([
      'sign_in.failure', 'sign_in.locked', 'sign_in.throttled', 'sign_in.success',
      'token.issued', 'token.refreshed', 'token.replay_detected', 'grant.revoked', 'token.revoked', 'logout',
      'user.created', 'user.password_changed', 'user.disabled', 'client.created', 'client.deleted',
    ]));
    const locked = logged().find((line) => line.event === 'sign_in.locked')!;
    expect(locked).toMatchObject({ email: user.email, scope: 'pair', retryAfterSeconds: 60, level: 40 });
    expect(logged().find((line) => line.event === 'token.refreshed')).toMatchObject({ accountId: otherUser.id, clientId: client.clientId });
    expect(logged().find((line) => line.event === 'logout')).toMatchObject({ accountId: otherUser.id });

    const stored = await server.database('audit_events').select();
    expect(new Set(stored.map((row: { type: string }) => row.type))).toEqual(eventTypes());
    const everything = `${lines.join('\n')}\n${JSON.stringify(stored)}`;
    expect(secrets.filter((secret) => secret.length > 0 && everything.includes(secret))).toEqual([]);
  });

  it('shows the events of one user with `latchkey events`', async () => {
    const mine = JSON.parse((await cli('events', '--email', userEmail.toUpperCase(), '--json')).stdout);
    // Events of the same millisecond are written concurrently and may be stored in either order.
    expect(mine.map((event: { type: string }) => event.type).sort()).toEqual(['sign_in.failure', 'sign_in.failure', 'sign_in.locked', 'sign_in.throttled']);
    expect(mine[0]).toMatchObject({ email: userEmail, ip: expect.any(String), occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });

    const recent = JSON.parse((await cli('events', '--since', '1h', '--json')).stdout);
    expect(recent.length).toBeGreaterThan(mine.length);
    expect(JSON.parse((await cli('events', '--since', '2999-01-01', '--json')).stdout)).toEqual([]);
    const text = await cli('events', '--email', 'cli-user@example.com');
    expect(text.stdout.split('\n')[0]).toMatch(/^TIME\s+EVENT\s+EMAIL/);
    expect(text.stdout).toMatch(/user\.password_changed\s+cli-user@example\.com/);
    expect(await cli('events', '--since', 'yesterday')).toMatchObject({ code: 1, stderr: expect.stringContaining('--since must be an ISO date') });
  });

  it('keeps events for AUDIT_RETENTION_DAYS, then the purge deletes them', async () => {
    const count = async () => Number((await server.database('audit_events').count({ count: '*' }))[0].count);
    const before = await count();
    await server.purgeExpired(Date.now() + 89 * 86_400_000);
    expect(await count()).toBe(before);
    await server.purgeExpired(Date.now() + 91 * 86_400_000);
    expect(await count()).toBe(0);
  });

  it('still signs a user in when the audit table cannot be written, and logs the failure', async () => {
    const { database } = server;
    const client = await createClient(server.services, { skipConsent: true });
    const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const user = await createUser(server.services);
    await database.schema.renameTable('audit_events', 'audit_events_away');
    try {
      const { tokens } = await signIn(rp, createBrowser(), { email: user.email, password });
      expect(tokens.claims()!.sub).toBe(user.id);
      await server.services.audit.settled();
    } finally {
      await database.schema.renameTable('audit_events_away', 'audit_events');
    }
    expect(logged().filter((line) => line.event === 'audit.write_failed').length).toBeGreaterThan(0);
  });
});

describe('writing the audit table', () => {
  it('stores events recorded together in batched INSERTs, and record() resolves once its event is stored', async () => {
    // The audit trail the server builds, on the test's own connection, whose statements the test can watch.
    const { database, connection } = server;
    const audit = createAudit({ events: createAuditEventStore(connection), logger: createLogger('silent') });
    const { auditEvents } = server.services;
    const inserts: number[] = [];
    const onQuery = (query: { sql: string; bindings?: unknown[] }) => {
      if (/^insert into .audit_events./.test(query.sql)) inserts.push((query.bindings?.length ?? 0) / 7);
    };
    database.on('query', onQuery);
    try {
      const written = Array.from({ length: 250 }, (_, i) => audit.record({ type: 'batch.test', clientId: `batch-${i}` }));
      await written[0];
      // One batch: 250 events in three INSERTs of at most 100 rows, not 250 statements.
      expect(inserts).toEqual([100, 100, 50]);
      const stored = await auditEvents.list({ limit: 1000 });
      expect(stored.filter((event) => event.type === 'batch.test')).toHaveLength(250);
    } finally {
      database.off('query', onQuery);
    }
  });
});

describe('storing what attackers type', () => {
  it('stores an event whose email holds a NUL byte, and the events batched with it', async () => {
    const { audit, auditEvents } = server.services;
    const failuresBefore = logged().filter((line) => line.event === 'audit.write_failed').length;
    const nul = audit.record({ type: 'sign_in.failure', email: 'mallory\u0000@example.com', ip: '192.0.2.1' });
    const other = audit.record({ type: 'sign_in.failure', email: 'batched-with-mallory@example.com', ip: '192.0.2.1' });
    await Promise.all([nul, other]);
    expect(logged().filter((line) => line.event === 'audit.write_failed')).toHaveLength(failuresBefore);
    const stored = await auditEvents.list({ limit: 1000 });
    expect(stored.map((event) => event.email)).toEqual(expect.arrayContaining(['mallory\uFFFD@example.com', 'batched-with-mallory@example.com']));
  });
});

describe('the logger', () => {
  it('redacts fields named like secrets, as a second line of defence', () => {
    const written: string[] = [];
    const logger = createLogger('info', { write: (line: string) => void written.push(line) });
    logger.info({ password: 'hunter2-password', client: { client_secret: 'hunter2-secret' }, request: { token: 'hunter2-token', code: 'hunter2-code' } }, 'oops');
    expect(written).toHaveLength(1);
    expect(written[0]).not.toContain('hunter2');
    expect(JSON.parse(written[0])).toMatchObject({ password: '[redacted]', client: { client_secret: '[redacted]' }, request: { token: '[redacted]', code: '[redacted]' } });
  });
});
