import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliCapturing } from './support/cli.js';
import { startTestServer, type TestServer } from './support/server.js';

// Dynamic client registration (RFC 7591) and management (RFC 7592), for AI agents and tools that connect themselves.
// CLIENT_REGISTRATION: closed (default), token (an initial access token from the CLI), open. Registered clients
// are held to the rules of `latchkey clients create` and get no API and no skipped consent.

const audience = 'https://api.example.test';
let closed: TestServer;
let open: TestServer;
let guarded: TestServer;
let offsetMs = 0;

beforeAll(async () => {
  [closed, open, guarded] = await Promise.all([
    startTestServer(),
    startTestServer({ clientRegistration: { mode: 'open', perIpPerHour: 1000 } }),
    startTestServer({ clientRegistration: { mode: 'token', perIpPerHour: 1000 } }, undefined, { now: () => Date.now() + offsetMs }),
  ]);
  await open.services.apis.register(audience, ['read']);
});
afterAll(() => Promise.all([closed?.close(), open?.close(), guarded?.close()]));

const agent = { client_name: 'Research agent', redirect_uris: ['https://agent.example.com/callback'], grant_types: ['authorization_code', 'refresh_token'] };

async function register(server: TestServer, metadata: Record<string, unknown>, token?: string) {
  const response = await fetch(`${server.issuer}/reg`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(metadata),
  });
  return { status: response.status, body: await response.json().catch(() => ({})) as Record<string, any> };
}

async function manage(url: string, token: string, method = 'GET', metadata?: Record<string, unknown>) {
  const response = await fetch(url, {
    method, headers: { authorization: `Bearer ${token}`, ...(metadata ? { 'content-type': 'application/json' } : {}) },
    ...(metadata ? { body: JSON.stringify(metadata) } : {}),
  });
  return { status: response.status, body: await response.json().catch(() => ({})) as Record<string, any> };
}

async function registrationToken(server: TestServer, ...options: string[]) {
  const result = await runCliCapturing(['clients', 'registration-token', 'create', ...options, '--json'], { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir });
  expect(result.stderr).toBe('');
  return JSON.parse(result.stdout).token as string;
}

const discovery = async (server: TestServer) => (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json() as Promise<Record<string, unknown>>;

describe('CLIENT_REGISTRATION=closed (the default)', () => {
  it('has no registration endpoint', async () => {
    expect((await discovery(closed)).registration_endpoint).toBeUndefined();
    expect((await register(closed, agent)).status).toBe(404);
  });
});

describe('CLIENT_REGISTRATION=open', () => {
  it('registers a client in the clients table, under the rules of clients create, and audits it', async () => {
    expect((await discovery(open)).registration_endpoint).toBe(`${open.issuer}/reg`);
    const { status, body } = await register(open, agent);
    expect(status).toBe(201);
    expect(body).toMatchObject({ client_name: 'Research agent', token_endpoint_auth_method: 'client_secret_basic' });
    expect(body.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const stored = await open.services.clients.find(body.client_id);
    expect(stored).toMatchObject({ name: 'Research agent', redirectUris: agent.redirect_uris, skipConsent: false, clientSecret: body.client_secret });
    await open.services.audit.settled();
    const events = await open.services.auditEvents.list({ limit: 10 });
    expect(events.find((event) => event.type === 'client.registered')).toMatchObject({ clientId: body.client_id, ip: expect.any(String) });
  });

  it('refuses what clients create refuses, and what only an operator may set', async () => {
    const refusals: [Record<string, unknown>, string, string][] = [
      [{ ...agent, redirect_uris: ['http://agent.example.com/cb'] }, 'invalid_redirect_uri', 'must use https'],
      [{ ...agent, redirect_uris: ['com.example.agent:/cb'] }, 'invalid_redirect_uri', ''],
      [{ ...agent, skip_consent: true }, 'invalid_client_metadata', 'skip_consent is set by an operator'],
      [{ ...agent, backchannel_logout_uri: 'http://127.0.0.1:9/logout' }, 'invalid_client_metadata', 'set by an operator'],
      [{ ...agent, token_endpoint_auth_method: 'none', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }, 'invalid_client_metadata', 'public client cannot use client_credentials'],
      [{ ...agent, web_origins: ['https://agent.example.com/path'] }, 'invalid_client_metadata', 'must be an origin alone'],
    ];
    for (const [metadata, error, description] of refusals) {
      const { status, body } = await register(open, metadata);
      expect(status, JSON.stringify(body)).toBe(400);
      expect(body).toMatchObject({ error, error_description: expect.stringContaining(description) });
    }
    expect((await open.services.clients.list()).length).toBe(1);
  });

  it('gives a registered client no API, whatever it asks for', async () => {
    // An API's scope is not one oidc-provider knows as a client's `scope`: refused at once.
    expect(await register(open, { ...agent, scope: 'read' })).toMatchObject({ status: 400, body: { error: 'invalid_client_metadata' } });
    const { status, body } = await register(open, { ...agent, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], resource: audience, apis: [{ audience, scopes: ['read'] }] });
    expect(status, JSON.stringify(body)).toBe(201);
    expect(await open.services.clients.listApis(body.client_id)).toEqual(new Map());
    const response = await fetch(`${open.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${body.client_id}:${body.client_secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: audience, scope: 'read' }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: expect.stringMatching(/^invalid_(target|scope)$/) });
  });

  it('lets a client read, update and delete itself with its registration access token (RFC 7592)', async () => {
    const { body: created } = await register(open, { ...agent, token_endpoint_auth_method: 'none' });
    const url = created.registration_client_uri as string;
    const read = await manage(url, created.registration_access_token);
    expect(read).toMatchObject({ status: 200, body: { client_id: created.client_id, redirect_uris: agent.redirect_uris } });

    const refused = await manage(url, created.registration_access_token, 'PUT', { client_id: created.client_id, redirect_uris: ['http://agent.example.com/cb'], token_endpoint_auth_method: 'none' });
    expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_redirect_uri' } });
    const updated = await manage(url, created.registration_access_token, 'PUT', {
      client_id: created.client_id, client_name: 'Renamed agent', redirect_uris: ['https://agent.example.com/new'], token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
    });
    expect(updated).toMatchObject({ status: 200, body: { client_name: 'Renamed agent' } });
    expect(await open.services.clients.find(created.client_id)).toMatchObject({ name: 'Renamed agent', redirectUris: ['https://agent.example.com/new'] });
    // The registration access token rotates at each update: the old one is gone.
    expect((await manage(url, created.registration_access_token)).status).toBe(401);
    const token = updated.body.registration_access_token as string;
    const switched = await manage(url, token, 'PUT', { client_id: created.client_id, redirect_uris: ['https://agent.example.com/new'], token_endpoint_auth_method: 'client_secret_basic' });
    expect(switched).toMatchObject({ status: 400, body: { error: 'invalid_client_metadata' } });

    const other = (await register(open, agent)).body;
    expect((await manage(url, other.registration_access_token)).status).toBe(401);

    expect((await manage(url, token, 'DELETE')).status).toBe(204);
    expect(await open.services.clients.find(created.client_id)).toBeUndefined();
    expect((await manage(url, token)).status).toBe(401);
    await open.services.audit.settled();
    const types = (await open.services.auditEvents.list({ limit: 50 })).filter((event) => event.clientId === created.client_id).map((event) => event.type);
    expect(types).toEqual(expect.arrayContaining(['client.registered', 'client.registration_updated', 'client.registration_deleted']));
  });
});

describe('CLIENT_REGISTRATION=token', () => {
  it('refuses a registration without a valid initial access token', async () => {
    expect(await register(guarded, agent)).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
    expect(await register(guarded, agent, 'made-up-token')).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
  });

  it('accepts a token once by default, and --uses times', async () => {
    const single = await registrationToken(guarded);
    expect((await register(guarded, agent, single)).status).toBe(201);
    expect(await register(guarded, agent, single)).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
    const twice = await registrationToken(guarded, '--uses', '2');
    const answers = await Promise.all([1, 2, 3].map(() => register(guarded, agent, twice)));
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 201, 401]);
  });

  it('gives back the use a refused registration took', async () => {
    const single = await registrationToken(guarded);
    expect((await register(guarded, { ...agent, skip_consent: true }, single)).status).toBe(400);
    expect((await register(guarded, agent, single)).status).toBe(201);
  });

  it('refuses an expired token', async () => {
    const token = await registrationToken(guarded, '--expires', '10m');
    offsetMs = 10 * 60_000 + 1000;
    try {
      expect(await register(guarded, agent, token)).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
    } finally {
      offsetMs = 0;
    }
    expect((await register(guarded, agent, token)).status).toBe(201);
  });

  it('purges expired tokens, and only those', async () => {
    await registrationToken(guarded, '--expires', '10m');
    const count = async () => Number((await guarded.database('registration_tokens').count({ n: '*' }))[0].n);
    const before = await count();
    await guarded.purgeExpired(Date.now() + 5 * 60_000);
    expect(await count()).toBe(before);
    await guarded.purgeExpired(Date.now() + 2 * 3_600_000);
    expect(await count()).toBe(0);
  });

  it('refuses bad CLI options on one line', async () => {
    const env = { DATABASE_URL: guarded.config.databaseUrl, KEYS_DIR: guarded.config.keysDir };
    expect(await runCliCapturing(['clients', 'registration-token', 'create', '--uses', '0'], env)).toMatchObject({ code: 1, stderr: expect.stringContaining('1 to 10000') });
    expect(await runCliCapturing(['clients', 'registration-token', 'create', '--expires', 'soon'], env)).toMatchObject({ code: 1, stderr: expect.stringContaining('--expires must be a duration') });
  });
});

describe('the registration throttle', () => {
  it('refuses registrations from one address beyond CLIENT_REGISTRATIONS_PER_IP_PER_HOUR, refused ones counted', async () => {
    const server = await startTestServer({ clientRegistration: { mode: 'open', perIpPerHour: 3 } });
    try {
      expect((await register(server, { ...agent, skip_consent: true })).status).toBe(400);
      expect((await register(server, agent)).status).toBe(201);
      expect((await register(server, agent)).status).toBe(201);
      const refused = await register(server, agent);
      expect(refused).toMatchObject({ status: 429, body: { error: 'temporarily_unavailable' } });
      expect((await server.services.clients.list()).length).toBe(2);
    } finally {
      await server.close();
    }
  });
});
