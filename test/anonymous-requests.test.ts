import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { createBrowser } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, redirectUri, signIn } from './support/rp.js';
import { sendBytes } from './support/raw-http.js';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * Requests nobody signed in for may make Latchkey store rows (an interaction per authorization request, a session per
 * end-session request, a pushed authorization request, a failed token request's audit event). Each row must be small
 * and, but for the audit trail, short-lived: the review grew the database by 1.5 MiB/s from one client.
 */

let server: TestServer;
let clientId: string;
let publicClientId: string;
const interactionTtlSeconds = 1200;

beforeAll(async () => {
  server = await startTestServer({ interactionTtlSeconds });
  clientId = (await createClient(server.services)).clientId;
  publicClientId = (await createClient(server.services, { isPublic: true })).clientId;
});
afterAll(() => server.close());

type Row = { key: string; model: string; expiresAt: number; bytes: number; accountId: string | null };
type StoredRow = { model: string; id: string; expires_at: number | string; payload: string; account_id: string | null };

async function rows(): Promise<Row[]> {
  const found: StoredRow[] = await server.database('oidc_payloads').select('model', 'id', 'expires_at', 'payload', 'account_id');
  return found.map((row) => ({
    key: `${row.model}/${row.id}`, model: row.model, expiresAt: Number(row.expires_at), bytes: Buffer.byteLength(row.payload), accountId: row.account_id,
  }));
}

/** The rows `request` added, with the time it was sent. */
async function rowsWrittenBy(request: () => Promise<unknown>): Promise<{ sentAt: number; added: Row[] }> {
  const before = new Set((await rows()).map((row) => row.key));
  const sentAt = Date.now();
  await request();
  return { sentAt, added: (await rows()).filter((row) => !before.has(row.key)) };
}

function expectExpiry(row: Row, sentAt: number, ttlSeconds: number) {
  expect(row.expiresAt).toBeGreaterThanOrEqual(sentAt + ttlSeconds * 1000 - 1000);
  expect(row.expiresAt).toBeLessThanOrEqual(Date.now() + ttlSeconds * 1000);
}

function authorizationQuery(extra: Record<string, string> = {}, client = clientId): string {
  return new URLSearchParams({
    client_id: client, response_type: 'code', redirect_uri: redirectUri, scope: 'openid',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', ...extra,
  }).toString();
}

/** Pads `state` so that the whole query string takes exactly `bytes`. */
function queryOfSize(bytes: number, base: (state: string) => string): string {
  const withoutState = base('').length;
  return base('s'.repeat(bytes - withoutState));
}

describe('a cookie-less end-session request', () => {
  it('stores one session that lives ANONYMOUS_SESSION_TTL, not SESSION_TTL, and is purged after it', async () => {
    const { sentAt, added } = await rowsWrittenBy(() => fetch(`${server.issuer}/session/end?state=${'x'.repeat(2000)}`));
    expect(added.map((row) => row.model)).toEqual(['Session']);
    expectExpiry(added[0], sentAt, server.config.anonymousSessionTtlSeconds);
    expect(server.config.anonymousSessionTtlSeconds).toBeLessThan(server.config.sessionTtlSeconds);
    await server.purgeExpired(sentAt + server.config.anonymousSessionTtlSeconds * 1000 + 1000);
    expect((await rows()).filter((row) => row.model === 'Session')).toEqual([]);
  });

  it('stores a session with the short lifetime again when it comes back with the cookie of a purged one', async () => {
    const first = await fetch(`${server.issuer}/session/end`);
    const cookie = first.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ');
    expect(cookie).toContain('_session=');
    await server.purgeExpired(Date.now() + server.config.anonymousSessionTtlSeconds * 1000 + 1000);
    const { sentAt, added } = await rowsWrittenBy(() => fetch(`${server.issuer}/session/end`, { headers: { cookie } }));
    expect(added.map((row) => row.model)).toEqual(['Session']);
    expectExpiry(added[0], sentAt, server.config.anonymousSessionTtlSeconds);
    await server.purgeExpired(Date.now() + server.config.anonymousSessionTtlSeconds * 1000 + 1000);
  });
});

describe('a cookie-less authorization request', () => {
  it('stores one interaction that lives INTERACTION_TTL and no session', async () => {
    const { sentAt, added } = await rowsWrittenBy(() => fetch(`${server.issuer}/auth?${authorizationQuery()}`, { redirect: 'manual' }));
    expect(added.map((row) => row.model)).toEqual(['Interaction']);
    expectExpiry(added[0], sentAt, interactionTtlSeconds);
  });

  it('accepts parameters up to ANONYMOUS_REQUEST_MAX_BYTES, and the interaction they make stays within twice that', async () => {
    const max = server.config.anonymousRequestMaxBytes;
    const query = queryOfSize(max, (state) => authorizationQuery({ state }));
    const { added } = await rowsWrittenBy(async () => expect((await fetch(`${server.issuer}/auth?${query}`, { redirect: 'manual' })).status).toBe(303));
    expect(added).toHaveLength(1);
    expect(added[0].bytes).toBeLessThan(2 * max);
  });
});

describe('parameters over ANONYMOUS_REQUEST_MAX_BYTES', () => {
  const tooLong = () => 'x'.repeat(server.config.anonymousRequestMaxBytes);

  it('are refused at the authorization endpoint with invalid_request, and nothing is stored', async () => {
    const { added } = await rowsWrittenBy(async () => {
      const response = await fetch(`${server.issuer}/auth?${authorizationQuery({ state: tooLong() })}`, { redirect: 'manual', headers: { accept: 'application/json' } });
      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
      expect(await response.json()).toMatchObject({ error: 'invalid_request' });
    });
    expect(added).toEqual([]);
  });

  it('are refused with a readable page when a browser asks', async () => {
    const response = await fetch(`${server.issuer}/auth?${authorizationQuery({ login_hint: tooLong() })}`, { redirect: 'manual', headers: { accept: 'text/html' } });
    expect(response.status).toBe(400);
    const html = await response.text();
    expect(html).toContain(`at most ${server.config.anonymousRequestMaxBytes} are accepted`);
    expect(html).toContain('invalid_request');
  });

  it('are refused at the end-session endpoint, and no session is stored', async () => {
    const { added } = await rowsWrittenBy(async () => {
      const response = await fetch(`${server.issuer}/session/end?state=${tooLong()}`, { headers: { accept: 'application/json' } });
      expect(response.status).toBe(400);
      expect(response.headers.getSetCookie()).toEqual([]);
      expect(await response.json()).toMatchObject({ error: 'invalid_request' });
    });
    expect(added).toEqual([]);
  });

  it('are refused at the pushed authorization endpoint, where a public client needs no secret', async () => {
    const par = (body: string) => fetch(`${server.issuer}/request`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    const accepted = await par(authorizationQuery({}, publicClientId));
    expect(accepted.status).toBe(201);
    const { added } = await rowsWrittenBy(async () => {
      const response = await par(authorizationQuery({ nonce: tooLong() }, publicClientId));
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: 'invalid_request' });
    });
    expect(added).toEqual([]);
  });

  it('cannot be hidden in a chunked body, whose size is unknown until it is read: 411', async () => {
    const { added } = await rowsWrittenBy(async () => {
      const body = authorizationQuery({ nonce: tooLong() }, publicClientId);
      const answer = await sendBytes(server.port, `POST /request HTTP/1.1\r\nHost: ${new URL(server.issuer).host}\r\nAccept: application/json\r\n`
        + `Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
      expect(answer.status).toBe(411);
      expect(JSON.parse(answer.body)).toMatchObject({ error: 'invalid_request' });
    });
    expect(added).toEqual([]);
  });
});

describe('what a signed-in person stores', () => {
  it('keeps the full SESSION_TTL once an account is in the session', async () => {
    const client = await createClient(server.services);
    const user = await createUser(server.services);
    const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const sentAt = Date.now();
    await signIn(rp, createBrowser(), { email: user.email, password, consent: true });
    const [session] = (await rows()).filter((row) => row.model === 'Session' && row.accountId === user.id);
    expectExpiry(session, sentAt, server.config.sessionTtlSeconds);
  });
});

describe('a failed token request', () => {
  it('stores an audit event of bounded size, whatever grant_type it names', async () => {
    const sentAt = Date.now();
    const response = await fetch(`${server.issuer}/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=${'g'.repeat(40_000)}`,
    });
    expect(response.status).toBe(400);
    await server.services.audit.settled();
    const events = (await server.services.auditEvents.list({ since: sentAt, limit: 10 })).filter((event) => event.type === 'token.failure');
    expect(events).toHaveLength(1);
    expect(events[0].details).toMatchObject({ grantType: 'unsupported' });
    expect(JSON.stringify(events[0].details).length).toBeLessThan(200);
  });
});

describe('the settings', () => {
  it('default to minutes for an anonymous session, an hour for an interaction and 4 KiB of parameters', () => {
    expect(loadConfig({})).toMatchObject({ anonymousSessionTtlSeconds: 600, interactionTtlSeconds: 3600, anonymousRequestMaxBytes: 4096 });
    expect(loadConfig({ SESSION_TTL: '300' }).anonymousSessionTtlSeconds).toBe(300);
  });

  it('refuses an anonymous session outliving SESSION_TTL and a parameter limit too small for an ID token hint', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({ SESSION_TTL: '3600', ANONYMOUS_SESSION_TTL: '7200', ANONYMOUS_REQUEST_MAX_BYTES: '100', INTERACTION_TTL: '0' });
    } catch (caught) {
      error = caught as ConfigError;
    }
    expect(error?.problems).toEqual([
      'ANONYMOUS_SESSION_TTL (7200) must not exceed SESSION_TTL (3600)',
      'INTERACTION_TTL must be a whole number between 1 and 86400, got "0"',
      'ANONYMOUS_REQUEST_MAX_BYTES must be between 1024 and 57344, got "100"',
    ]);
  });
});
