import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, type Page } from './support/browser.js';
import { createClient, createUser } from './support/fixtures.js';
import { authorize, discoverRp } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;
let rp: oidc.Configuration;

beforeAll(async () => {
  // Throttling is tested elsewhere; here every attempt must reach the password check.
  server = await startTestServer({
    loginThrottle: {
      pairMaxFailures: 1000, lockSeconds: 60, lockMaxSeconds: 3600, accountMaxFailuresPerHour: 1000, ipMaxFailuresPerDay: 1000,
      ipMaxAttemptsPerMinute: 1000, accountMaxAttemptsPerMinute: 1000,
    },
  });
  const client = await createClient(server.services);
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(() => server.close());

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

describe('user enumeration at the login form', () => {
  it('answers an unknown email and a wrong password with the same page, status and (within noise) time', async () => {
    const user = await createUser(server.services);
    const unknownEmail = 'no-such-user@example.com';
    const browser = createBrowser();
    // A first failed attempt leaves the login form on screen; every timed attempt resubmits it.
    let { page } = await authorize(rp, browser, { email: unknownEmail, password: 'warm up the decoy hash' });
    const timings = { known: [] as number[], unknown: [] as number[] };
    const answers: Record<'known' | 'unknown', Page[]> = { known: [], unknown: [] };
    for (let round = 0; round < 7; round++) {
      for (const kind of ['known', 'unknown'] as const) {
        const started = performance.now();
        page = await browser.submit(page, 'form[action$="/login"]', { email: kind === 'known' ? user.email : unknownEmail, password: `wrong password ${round}` });
        timings[kind].push(performance.now() - started);
        answers[kind].push(page);
      }
    }
    const normalized = (answer: Page, email: string) => ({ status: answer.status, html: answer.html.replaceAll(email, 'EMAIL') });
    for (let round = 0; round < 7; round++) {
      expect(normalized(answers.unknown[round], unknownEmail)).toEqual(normalized(answers.known[round], user.email));
    }
    expect(answers.known[0].status).toBe(200);

    // Both paths pay for one argon2id verification (tens of milliseconds); without the decoy verification an
    // unknown email would answer several times faster. The tolerance is wide because the machine is shared.
    const ratio = median(timings.unknown) / median(timings.known);
    expect(ratio, `median ms: unknown ${median(timings.unknown).toFixed(1)}, known ${median(timings.known).toFixed(1)}`).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  });
});
