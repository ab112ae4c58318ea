import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountError } from '../src/accounts/accounts.js';
import { createBrowser } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { authorize, discoverRp, redirectUri, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

const parallelRequests = 20;
const rounds = 3;
let server: TestServer;
let rp: oidc.Configuration;
let clientAuth: string;

beforeAll(async () => {
  server = await startTestServer();
  const client = await createClient(server.services);
  clientAuth = `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`;
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(() => server.close());

/** Fires the same token request `parallelRequests` times at once; returns the statuses and error codes. */
async function race(body: Record<string, string>) {
  const responses = await Promise.all(Array.from({ length: parallelRequests }, () => fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { authorization: clientAuth, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(body),
  })));
  return Promise.all(responses.map(async (response) => ({ status: response.status, body: await response.json() as Record<string, string> })));
}

function expectExactlyOneWinner(results: Awaited<ReturnType<typeof race>>) {
  const winners = results.filter((result) => result.status === 200);
  const losers = results.filter((result) => result.status !== 200);
  expect(winners).toHaveLength(1);
  expect(losers).toHaveLength(parallelRequests - 1);
  for (const loser of losers) expect(loser).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  return winners[0].body;
}

describe('one-time credentials under concurrency', () => {
  it.each(Array.from({ length: rounds }, (_, round) => round + 1))(
    'redeems an authorization code for exactly one of 20 parallel requests (round %i)',
    async () => {
      const user = await createUser(server.services);
      const flow = await authorize(rp, createBrowser(), { email: user.email, password, consent: true });
      expectExactlyOneWinner(await race({
        grant_type: 'authorization_code',
        code: flow.callbackUrl.searchParams.get('code')!,
        redirect_uri: redirectUri,
        code_verifier: flow.codeVerifier,
      }));
    },
  );

  it.each(Array.from({ length: rounds }, (_, round) => round + 1))(
    'rotates a refresh token for exactly one of 20 parallel requests and treats the rest as replay (round %i)',
    async () => {
      const user = await createUser(server.services);
      const { tokens } = await signIn(rp, createBrowser(), { email: user.email, password, consent: true });
      const winner = expectExactlyOneWinner(await race({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }));
      // The losers were replays of a used token: the grant is revoked, so the winner's new token is dead too.
      await expect(oidc.refreshTokenGrant(rp, winner.refresh_token)).rejects.toMatchObject({ error: 'invalid_grant' });
    },
  );
});

describe('accounts under concurrency', () => {
  it('signs many users in at once', async () => {
    const users = await Promise.all(Array.from({ length: 8 }, () => createUser(server.services)));
    const results = await Promise.all(users.map((user) => signIn(rp, createBrowser(), { email: user.email, password, consent: true })));
    expect(results.map((result) => result.tokens.claims()!.sub)).toEqual(users.map((user) => user.id));
  });

  it('creates a user only once when the same email is created twice at once', async () => {
    const email = `twice-${Date.now()}@example.com`;
    const attempts = await Promise.allSettled([
      server.services.accounts.create({ email, password }),
      server.services.accounts.create({ email: email.toUpperCase(), password }),
    ]);
    expect(attempts.filter((attempt) => attempt.status === 'fulfilled')).toHaveLength(1);
    const [failure] = attempts.filter((attempt) => attempt.status === 'rejected') as PromiseRejectedResult[];
    expect(failure.reason).toBeInstanceOf(AccountError);
    expect(failure.reason.message).toBe(`a user with email ${email} already exists`);
    expect((await server.services.accounts.list()).filter((user) => user.email === email)).toHaveLength(1);
  });
});

describe('accounts created inside transactions', () => {
  it('creates more accounts at once than the pool has connections, each in its own transaction (federated first sign-ins, sign-ups)', async () => {
    // Each transaction holds a pooled connection; a check that asks the pool for a second one while it is held
    // waits for connections that only the waiting transactions can give back (it timed out with 503s everywhere).
    const stamp = Date.now();
    const created = await Promise.all(Array.from({ length: 24 }, (_, index) => server.services.transactions.run(
      (trx) => server.services.accounts.create({ email: `burst${index}-${stamp}@example.com`, givenName: 'Burst' }, trx),
    )));
    expect(new Set(created.map((user) => user.id)).size).toBe(24);
    // A look-alike in the same burst still loses, inside its transaction.
    const lookAlike = server.services.transactions.run((trx) => server.services.accounts.create({ email: `burst0-${stamp}@ex\u0430mple.com` }, trx));
    await expect(lookAlike).rejects.toBeInstanceOf(AccountError);
  }, 60_000);
});
