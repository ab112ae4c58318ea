import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { textOf } from './support/browser.js';
import { createClient } from './support/fixtures.js';
import { discoverRp, redirectUri } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

const perMinute = 10;
const clock = { time: Date.now() };
let server: TestServer;
let rp: oidc.Configuration;
let publicClientId: string;

beforeAll(async () => {
  // Behind one trusted proxy, each request names its client IP in X-Forwarded-For.
  server = await startTestServer({ statefulRequestsPerIpPerMinute: perMinute, trustedProxyCount: 1 }, undefined, { now: () => clock.time });
  const client = await createClient(server.services);
  publicClientId = (await createClient(server.services, { isPublic: true })).clientId;
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(() => server.close());

/** A browser's authorization request from `ip`: each one that is served creates an interaction row. */
async function authorizeFrom(ip: string) {
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: redirectUri, scope: 'openid', state: 'some-state',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  });
  return fetch(url, { redirect: 'manual', headers: { 'x-forwarded-for': ip } });
}

const interactions = async () => Number((await server.database('oidc_payloads').where({ model: 'Interaction' }).count({ count: '*' }))[0].count);

describe('the rate limit on requests that store something for anonymous clients', () => {
  it('serves at most STATEFUL_REQUESTS_PER_IP_PER_MINUTE of many simultaneous authorization requests from one IP, and 429 to the rest', async () => {
    const before = await interactions();
    const responses = await Promise.all(Array.from({ length: 40 }, () => authorizeFrom('192.0.2.1')));
    const served = responses.filter((response) => response.status !== 429);
    expect(served).toHaveLength(perMinute);
    for (const response of served) expect(response.headers.get('location')).toMatch(/^\/interaction\//);
    expect(await interactions() - before).toBe(perMinute);

    const refused = responses.find((response) => response.status === 429)!;
    expect(refused.headers.get('retry-after')).toBe('60');
    expect(refused.headers.get('location')).toBeNull();
    expect(refused.headers.get('content-type')).toMatch(/^text\/html/);
    expect(textOf(await refused.text(), '.error')).toBe('Too many requests from this address. Try again in 60 seconds.');

    // Another address is not affected, and the limited one may still read what stores nothing.
    expect((await authorizeFrom('192.0.2.2')).status).toBe(303);
    expect((await fetch(`${server.issuer}/.well-known/openid-configuration`, { headers: { 'x-forwarded-for': '192.0.2.1' } })).status).toBe(200);
  });

  it('counts logout requests, pushed authorization requests and the sign-in forms against the same limit', async () => {
    const ip = '192.0.2.3';
    for (let i = 0; i < perMinute; i++) expect((await authorizeFrom(ip)).status).toBe(303);
    const headers = { 'x-forwarded-for': ip, 'content-type': 'application/x-www-form-urlencoded' };

    const logout = await fetch(`${server.issuer}/session/end`, { headers, redirect: 'manual' });
    expect(logout.status).toBe(429);
    expect(await logout.text()).toContain('Too many requests from this address.');
    const form = await fetch(`${server.issuer}/interaction/some-uid/login`, { method: 'POST', headers, body: 'email=a%40b.c&password=x' });
    expect(form.status).toBe(429);
    // PAR is called by an app's backend: OAuth error JSON. A public client needs no secret to push a request.
    const pushed = await fetch(`${server.issuer}/request`, {
      method: 'POST', headers,
      body: new URLSearchParams({ client_id: publicClientId, response_type: 'code', redirect_uri: redirectUri, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }),
    });
    expect(pushed.status).toBe(429);
    expect(pushed.headers.get('retry-after')).toBe('60');
    expect(await pushed.json()).toEqual({ error: 'temporarily_unavailable', error_description: 'Too many requests from this address. Try again in 60 seconds.' });
  });

  it('lets the IP in again once its minute is over', async () => {
    const ip = '192.0.2.4';
    for (let i = 0; i < perMinute; i++) await authorizeFrom(ip);
    clock.time += 30_000;
    const refused = await authorizeFrom(ip);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('30');
    clock.time += 30_000;
    expect((await authorizeFrom(ip)).status).toBe(303);
  });
});
