import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser } from '../support/browser.js';
import { createClient, createUser, password } from '../support/fixtures.js';
import { authorize, discoverRp, signIn } from '../support/rp.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
let server: TestServer;
let basicAuth: string;

beforeAll(async () => {
  const direct = new URL(process.env.TEST_DATABASE_URL!);
  proxy = await startTcpProxy(direct.hostname, Number(direct.port || 5432));
  // The server reaches PostgreSQL only through the proxy, with a short timeout so the test stays quick.
  server = await startTestServer({ databaseTimeoutMs: 1000 }, (url) => {
    const proxied = new URL(url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    return proxied.href;
  });
  const client = await createClient(server.services, { grantTypes: ['client_credentials'], redirectUris: [] });
  basicAuth = `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`;
});
afterAll(async () => {
  proxy.restore();
  await server.close();
  await proxy.close();
});

const tokenRequest = () => fetch(`${server.issuer}/token`, {
  method: 'POST',
  headers: { authorization: basicAuth, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
  body: new URLSearchParams({ grant_type: 'client_credentials' }),
});

describe('when PostgreSQL becomes unreachable', () => {
  it('answers 503 quickly, reports it at /healthz, and recovers by itself when the database returns', async () => {
    expect((await tokenRequest()).status).toBe(200);

    proxy.cut();
    const startedAt = Date.now();
    const health = await fetch(`${server.issuer}/healthz`);
    expect(health.status).toBe(503);
    const token = await tokenRequest();
    expect(token.status).toBe(503);
    expect(token.headers.get('retry-after')).toBe('5');
    expect(await token.json()).toEqual({
      error: 'temporarily_unavailable',
      error_description: 'Latchkey cannot reach its database right now; try again shortly.',
    });
    const discovery = await fetch(`${server.issuer}/.well-known/openid-configuration`);
    expect(discovery.status).toBe(200); // needs no database
    expect(Date.now() - startedAt).toBeLessThan(10_000);

    proxy.restore();
    expect((await fetch(`${server.issuer}/healthz`)).status).toBe(200);
    expect((await tokenRequest()).status).toBe(200);
    const user = await createUser(server.services);
    const rpClient = await createClient(server.services);
    const rp = await discoverRp(server.issuer, rpClient.clientId, rpClient.clientSecret!);
    const { tokens } = await signIn(rp, createBrowser(), { email: user.email, password, consent: true });
    expect(tokens.access_token).toBeTruthy();
  });

  it('shows a readable 503 page on the login form', async () => {
    const user = await createUser(server.services);
    const rpClient = await createClient(server.services);
    const rp = await discoverRp(server.issuer, rpClient.clientId, rpClient.clientSecret!);
    const browser = createBrowser();
    const { page } = await authorize(rp, browser, { email: user.email, password: 'wrong password here' });
    proxy.cut();
    try {
      const answer = await browser.submit(page, 'form[action$="/login"]', { email: user.email, password });
      expect(answer.status).toBe(503);
      expect(answer.html).toContain('cannot reach its database');
      expect(answer.html).not.toMatch(/at \w+ \(/); // no stack trace
    } finally {
      proxy.restore();
    }
  });
});
