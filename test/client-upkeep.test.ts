import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliCapturing } from './support/cli.js';
import { startTestServer, type TestServer } from './support/server.js';

// `clients update` changes a client under the same rules as `clients create`; `clients rotate-secret` gives a new
// secret and keeps the old one working for a window the operator chooses, judged by the server's clock.

const audience = 'https://billing.example.test';
let server: TestServer;
let offsetMs = 0;
const cli = (...argv: string[]) => runCliCapturing([...argv, '--json'], { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir });

async function ok(...argv: string[]) {
  const result = await cli(...argv);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout);
}

beforeAll(async () => {
  server = await startTestServer({}, undefined, { now: () => Date.now() + offsetMs });
  await server.services.apis.register(audience, ['read', 'write']);
});
afterAll(() => server?.close());

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function clientCredentials(clientId: string, secret: string) {
  const response = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(clientId, secret) },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: audience, scope: 'read' }),
  });
  return { status: response.status, body: await response.json() as Record<string, unknown> };
}

describe('clients update', () => {
  it('changes redirect URIs (replace, add), grant types, kind, DPoP, PAR and web origins', async () => {
    await ok('clients', 'create', '--client-id', 'shop', '--public', '--redirect-uri', 'https://shop.example.com/cb');
    const updated = await ok('clients', 'update', '--client-id', 'shop', '--name', 'Shop',
      '--redirect-uri', 'https://shop.example.com/callback', '--add-redirect-uri', 'https://shop.example.com/other',
      '--post-logout-redirect-uri', 'https://shop.example.com/bye', '--grant-types', 'authorization_code',
      '--require-dpop', 'true', '--require-par', 'true', '--web-origin', 'https://shop.example.com', '--skip-consent', 'true');
    expect(updated).toMatchObject({
      name: 'Shop', redirectUris: ['https://shop.example.com/callback', 'https://shop.example.com/other'],
      postLogoutRedirectUris: ['https://shop.example.com/bye'], grantTypes: ['authorization_code'], requireDpop: true,
      requirePar: true, webOrigins: ['https://shop.example.com'], skipConsent: true, applicationType: 'web',
    });
    const metadata = await (await server.services.providerHost.current()).Client.find('shop');
    expect(metadata?.metadata()).toMatchObject({ dpop_bound_access_tokens: true, require_pushed_authorization_requests: true });
    expect(await ok('clients', 'update', '--client-id', 'shop', '--no-web-origins', '--require-par', 'false')).toMatchObject({ webOrigins: [], requirePar: false });
  });

  it('applies the rules of create and keeps the client as it was when a change breaks one', async () => {
    const before = await server.services.clients.find('shop');
    const refusals: [string[], string][] = [
      [['--redirect-uri', 'http://shop.example.com/cb'], 'must use https'],
      [['--add-redirect-uri', 'com.example.shop:/cb'], 'only a native app'],
      [['--grant-types', 'client_credentials'], 'public client cannot use client_credentials'],
      [['--grant-types', 'refresh_token'], 'the refresh_token grant needs the authorization_code'],
      [['--application-type', 'native', '--web-origin', 'https://shop.example.com'], 'web origins are for browser apps'],
      [['--web-origin', 'https://shop.example.com/path'], 'must be an origin alone'],
      [['--web-origin', 'http://shop.example.com'], 'must use https'],
      [['--require-dpop', 'yes'], 'must be true or false'],
      [['--api', `${audience}:delete`], 'has no scope delete'],
    ];
    for (const [argv, message] of refusals) {
      expect(await cli('clients', 'update', '--client-id', 'shop', ...argv)).toMatchObject({ code: 1, stderr: expect.stringContaining(message) });
    }
    expect(await server.services.clients.find('shop')).toEqual(before);
    expect(await cli('clients', 'update', '--client-id', 'nobody', '--name', 'x')).toMatchObject({ code: 1, stderr: expect.stringContaining('no client with id nobody') });
    expect(await cli('clients', 'update', '--client-id', 'shop')).toMatchObject({ code: 1, stderr: expect.stringContaining('nothing to change') });
  });

  it('records what changed in the audit trail', async () => {
    const events = await server.services.auditEvents.list({ limit: 20 });
    const updated = events.find((event) => event.type === 'client.updated' && event.details?.webOrigins === 'https://shop.example.com');
    expect(updated?.details).toMatchObject({ requireDpop: true, requirePar: true, redirectUris: 'https://shop.example.com/callback https://shop.example.com/other' });
  });
});

describe('clients rotate-secret', () => {
  it('prints a new secret once; the old one keeps working for --keep-old-for, then stops', async () => {
    const created = await ok('clients', 'create', '--client-id', 'billing-job', '--grant-types', 'client_credentials', '--api', `${audience}:read`);
    const oldSecret = created.clientSecret as string;
    expect((await clientCredentials('billing-job', oldSecret)).status).toBe(200);

    const rotated = await ok('clients', 'rotate-secret', '--client-id', 'billing-job', '--keep-old-for', '1h');
    const newSecret = rotated.clientSecret as string;
    expect(newSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newSecret).not.toBe(oldSecret);
    expect((await clientCredentials('billing-job', newSecret)).status).toBe(200);
    expect((await clientCredentials('billing-job', oldSecret)).status).toBe(200);
    expect((await clientCredentials('billing-job', `${oldSecret}x`)).status).toBe(401);

    offsetMs = 3_600_000 + 1000;
    expect(await clientCredentials('billing-job', oldSecret)).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect((await clientCredentials('billing-job', newSecret)).status).toBe(200);
    offsetMs = 0;
    expect(await server.services.clients.isPreviousSecret('billing-job', oldSecret)).toBe(true);
  });

  it('stops the old secret at once without --keep-old-for, and a second rotation ends the first one\'s window', async () => {
    const first = (await ok('clients', 'rotate-secret', '--client-id', 'billing-job', '--keep-old-for', '1d')).clientSecret as string;
    const second = (await ok('clients', 'rotate-secret', '--client-id', 'billing-job')).clientSecret as string;
    expect((await clientCredentials('billing-job', first)).status).toBe(401);
    expect((await clientCredentials('billing-job', second)).status).toBe(200);
  });

  it('accepts a previous secret only for its own client', async () => {
    const other = await ok('clients', 'create', '--client-id', 'other-job', '--grant-types', 'client_credentials', '--api', `${audience}:read`);
    const otherOld = other.clientSecret as string;
    await ok('clients', 'rotate-secret', '--client-id', 'other-job', '--keep-old-for', '1h');
    expect((await clientCredentials('other-job', otherOld)).status).toBe(200);
    expect((await clientCredentials('billing-job', otherOld)).status).toBe(401);
  });

  it('refuses a public client, an unknown client and a bad duration, and audits a rotation', async () => {
    expect(await cli('clients', 'rotate-secret', '--client-id', 'shop')).toMatchObject({ code: 1, stderr: expect.stringContaining('is public and has no secret') });
    expect(await cli('clients', 'rotate-secret', '--client-id', 'nobody')).toMatchObject({ code: 1, stderr: expect.stringContaining('no client with id nobody') });
    expect(await cli('clients', 'rotate-secret', '--client-id', 'billing-job', '--keep-old-for', 'forever')).toMatchObject({ code: 1, stderr: expect.stringContaining('--keep-old-for must be a duration') });
    const events = await server.services.auditEvents.list({ limit: 50 });
    expect(events.filter((event) => event.type === 'client.secret_rotated' && event.clientId === 'billing-job').length).toBeGreaterThanOrEqual(3);
    expect(JSON.stringify(events)).not.toContain('clientSecret');
  });
});
