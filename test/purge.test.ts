import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;
let service: oidc.Configuration;
let app: oidc.Configuration;
let email: string;

beforeAll(async () => {
  server = await startTestServer();
  const serviceClient = await createClient(server.services, { grantTypes: ['client_credentials'], redirectUris: [] });
  service = await discoverRp(server.issuer, serviceClient.clientId, serviceClient.clientSecret!);
  const appClient = await createClient(server.services);
  app = await discoverRp(server.issuer, appClient.clientId, appClient.clientSecret!);
  email = (await createUser(server.services)).email;
});
afterAll(() => server.close());

async function countRows(model?: string): Promise<number> {
  const query = server.database('oidc_payloads');
  if (model) query.where({ model });
  return Number((await query.count({ count: '*' }))[0].count);
}

/**
 * `concurrency` loops each sending `request(loop)` back to back until stop(). Every request is timed, so a test can
 * tell which ones were in flight during a purge. The first failure rejects `reached()` and `stop()`: a 5xx, a
 * network error or an OAuth error fails the test instead of being counted.
 */
function startSteadyLoad(concurrency: number, request: (loop: number) => Promise<unknown>) {
  const timings: { startedAt: number; endedAt: number }[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  let isStopped = false;
  const loops = Promise.all(Array.from({ length: concurrency }, async (_, loop) => {
    while (!isStopped) {
      const startedAt = performance.now();
      await request(loop).catch((error: unknown) => {
        isStopped = true; // the other loops stop too
        throw error;
      });
      timings.push({ startedAt, endedAt: performance.now() });
      for (const waiter of waiters.filter((w) => timings.length >= w.count)) waiter.resolve();
    }
  }));
  loops.catch(() => undefined); // observed through reached() and stop()
  return {
    timings,
    /** Resolves once `count` requests have completed (waits on the counter, never on a timer). */
    reached(count: number): Promise<void> {
      if (timings.length >= count) return Promise.resolve();
      const reached = new Promise<void>((resolve) => waiters.push({ count, resolve }));
      return Promise.race([reached, loops.then(() => { throw new Error('the load stopped early'); })]);
    },
    async stop(): Promise<void> {
      isStopped = true;
      await loops;
    },
  };
}

/** Runs the purge while `load` is sending requests; returns what it deleted and how many requests overlapped it. */
async function purgeDuringLoad(load: ReturnType<typeof startSteadyLoad>, now: number) {
  const startedAt = performance.now();
  const purged = await server.purgeExpired(now);
  const endedAt = performance.now();
  // Let the loops send more requests after the purge: they must find the server undisturbed.
  await load.reached(load.timings.length + 10);
  const overlapping = load.timings.filter((request) => request.startedAt < endedAt && request.endedAt > startedAt).length;
  return { purged, overlapping };
}

describe('purging expired rows under a steady load', () => {
  it('keeps the table bounded round after round while every token request during the purge succeeds', async () => {
    const accessTokenTtlMs = server.config.accessTokenTtlSeconds * 1000;
    // More than the purge's batch of 500: purging one round's tokens takes two DELETEs while requests go on.
    const requestsPerRound = 520;
    const rounds = 3;
    // The purge's clock. Every token of a round was issued before the round ended, so it has expired at
    // `end of round + ACCESS_TOKEN_TTL`: the next round's purge runs at that time, while the next round's tokens
    // (issued later, on the real clock) are still live.
    let purgeNow: number | undefined;
    const issued: number[] = [];
    const rowsAfterRound: number[] = [];

    for (let round = 0; round < rounds; round += 1) {
      // Opaque client_credentials tokens (no resource): each one is a row in oidc_payloads.
      const load = startSteadyLoad(8, () => oidc.clientCredentialsGrant(service));
      if (purgeNow !== undefined) {
        await load.reached(requestsPerRound / 4);
        const { purged, overlapping } = await purgeDuringLoad(load, purgeNow);
        // Every token of the previous round went, and the purge ran amid requests.
        expect(purged).toBeGreaterThanOrEqual(issued[round - 1]);
        expect(overlapping).toBeGreaterThan(0);
      }
      await load.reached(requestsPerRound);
      await load.stop();
      purgeNow = Date.now() + accessTokenTtlMs;
      issued.push(load.timings.length);
      rowsAfterRound.push(await countRows('ClientCredentials'));
    }

    // One row per token while nothing has expired …
    expect(rowsAfterRound[0]).toBe(issued[0]);
    // … and after that never more than one round's worth: the earlier rounds' tokens are gone, so the table is no
    // bigger after the last round than after the first, though it has seen three times the traffic.
    for (let round = 1; round < rounds; round += 1) {
      expect(rowsAfterRound[round]).toBeGreaterThan(0);
      expect(rowsAfterRound[round]).toBeLessThanOrEqual(issued[round]);
    }
    expect(rowsAfterRound[rounds - 1]).toBeLessThanOrEqual(rowsAfterRound[0] + 8);
    expect(await server.purgeExpired(purgeNow!)).toBeGreaterThanOrEqual(issued[rounds - 1]);
    expect(await countRows('ClientCredentials')).toBe(0);
  }, 60_000); // about 1,600 token requests: 7–11 s on a 2-core machine, SQLite or PostgreSQL

  it('purges the access tokens refreshes leave behind, keeps used refresh tokens for reuse detection, and refreshes during the purge succeed', async () => {
    const accessTokenTtlMs = server.config.accessTokenTtlSeconds * 1000;
    const chains = 4;
    const first: string[] = [];
    const latest: string[] = [];
    for (let chain = 0; chain < chains; chain += 1) {
      const { tokens } = await signIn(app, createBrowser(), { email, password, consent: true });
      first.push(tokens.refresh_token!);
      latest.push(tokens.refresh_token!);
    }
    const refreshTokensBefore = await countRows('RefreshToken');

    let purgeNow: number | undefined;
    let refreshes = 0;
    for (let round = 0; round < 3; round += 1) {
      // Each loop rotates its own chain, as one app would; a purge that removed a live refresh token or its grant
      // would make the next refresh fail with invalid_grant.
      const load = startSteadyLoad(chains, async (chain) => {
        latest[chain] = (await oidc.refreshTokenGrant(app, latest[chain])).refresh_token!;
      });
      if (purgeNow !== undefined) {
        await load.reached(10);
        expect((await purgeDuringLoad(load, purgeNow)).overlapping).toBeGreaterThan(0);
      }
      await load.reached(40);
      await load.stop();
      purgeNow = Date.now() + accessTokenTtlMs;
      refreshes += load.timings.length;
      // Access tokens of earlier rounds are gone; only this round's are left.
      expect(await countRows('AccessToken')).toBeLessThanOrEqual(load.timings.length + chains);
    }

    // Used refresh tokens stay until their own expiry, whatever the purge: oidc-provider recognises a replay only
    // while the used token is still stored (RFC 9700 §4.14.2). So they grow with use until REFRESH_TOKEN_TTL …
    expect(await countRows('RefreshToken')).toBe(refreshTokensBefore + refreshes);
    await expect(oidc.refreshTokenGrant(app, first[0])).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(app, latest[0])).rejects.toMatchObject({ error: 'invalid_grant' }); // grant revoked
    expect(await oidc.refreshTokenGrant(app, latest[1])).toHaveProperty('refresh_token');

    // … and then they, their grants and sessions go too: past every TTL, the table is empty.
    const longestTtlMs = Math.max(server.config.refreshTokenTtlSeconds, server.config.sessionTtlSeconds) * 1000;
    await server.purgeExpired(Date.now() + longestTtlMs + 3_600_000);
    expect(await countRows()).toBe(0);
  });
});
