import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, textOf } from './support/browser.js';
import { federatedAuthorize } from './support/federation.js';
import { createClient, password } from './support/fixtures.js';
import { discoverRp, redirectUri } from './support/rp.js';
import { isAtCallback, shownRecoveryCodes, shownSecret, submitCode, totpCode } from './support/second-factor.js';
import { startTestServer, type TestServer } from './support/server.js';

// A sign-in through an upstream connection is a first factor like the password: with MFA=required the person sets
// up a second factor inside that sign-in, and afterwards gives it after every federated sign-in.
let upstream: TestServer;
let latchkey: TestServer;
let rp: oidc.Configuration;
const clock = { time: Date.now() };

beforeAll(async () => {
  [upstream, latchkey] = await Promise.all([
    startTestServer(),
    startTestServer({ mfa: { policy: 'required', totpDriftSteps: 1, passkeyTimeoutSeconds: 300 } }, undefined, { now: () => clock.time }),
  ]);
  const registration = await createClient(upstream.services, {
    clientId: 'latchkey-downstream', skipConsent: true, redirectUris: [`${latchkey.issuer}/connections/corp/callback`],
  });
  await latchkey.services.connections.create({
    id: 'corp', name: 'Corp SSO', issuer: upstream.issuer, clientId: registration.clientId, clientSecret: registration.clientSecret!,
  });
  const app = await createClient(latchkey.services, { skipConsent: true });
  rp = await discoverRp(latchkey.issuer, app.clientId, app.clientSecret!);
});
afterAll(async () => {
  await latchkey?.close();
  await upstream?.close();
});

async function redeem(flow: Awaited<ReturnType<typeof federatedAuthorize>>, url: string) {
  const tokens = await oidc.authorizationCodeGrant(rp, new URL(url), {
    pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce, idTokenExpected: true,
  });
  return tokens.claims()!;
}

describe('a federated sign-in and the second factor', () => {
  it('sets up a second factor inside the first federated sign-in under MFA=required, and asks for it on the next one', async () => {
    const email = 'fed-mfa@example.com';
    await upstream.services.accounts.create({ email, password, emailVerified: true });
    const via = { connection: 'corp', upstreamIssuer: upstream.issuer, email, password, direct: true };

    const browser = createBrowser();
    const flow = await federatedAuthorize(rp, browser, via);
    // Not back at the app yet: the new, password-less account sets up its authenticator app first.
    expect(flow.page.url).toMatch(/\/interaction\/[^/]+\/mfa$/);
    expect(textOf(flow.page.html, 'h1')).toBe('Set up two-step sign-in');
    const secret = shownSecret(flow.page);
    const codesPage = await browser.submit(flow.page, 'form[action$="/mfa/enrol"]', { code: totpCode(secret, clock.time) });
    expect(shownRecoveryCodes(codesPage)).toHaveLength(10);
    const continueTo = codesPage.html.match(/href="([^"]+\/auth\/[^"]+)"/)![1].replace(/&amp;/g, '&');
    const finished = await browser.follow(new URL(continueTo, latchkey.issuer).href, {}, redirectUri);
    expect(isAtCallback(finished)).toBe(true);
    const first = await redeem(flow, finished.url);
    expect(first).toMatchObject({ acr: 'urn:latchkey:acr:mfa', amr: ['fed', 'otp', 'mfa'] });
    clock.time += 30_000;

    // The next federated sign-in, in another browser, stops at the code page; the right code finishes it.
    const next = createBrowser();
    const nextFlow = await federatedAuthorize(rp, next, via);
    expect(textOf(nextFlow.page.html, 'h1')).toBe('Two-step sign-in');
    const done = await submitCode(next, nextFlow.page, totpCode(secret, clock.time));
    expect(isAtCallback(done)).toBe(true);
    expect(await redeem(nextFlow, done.url)).toMatchObject({ sub: first.sub, amr: ['fed', 'otp', 'mfa'] });
  });
});
