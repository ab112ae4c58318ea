import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceCodeGrantType } from '../src/registry/client-rules.js';
import { createBrowser, textOf } from './support/browser.js';
import { enterUserCode } from './support/device.js';
import { createClient } from './support/fixtures.js';
import { discoverRp } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

const maxAttemptsPerMinute = 3;
const clock = { time: Date.now() };
let server: TestServer;
let rp: oidc.Configuration;

beforeAll(async () => {
  // Behind one trusted proxy, each request names its client IP in X-Forwarded-For.
  server = await startTestServer(
    { trustedProxyCount: 1, deviceFlow: { codeTtlSeconds: 600, pollIntervalSeconds: 1, maxAttemptsPerMinute } },
    undefined,
    { now: () => clock.time },
  );
  const client = await createClient(server.services, { isPublic: true, redirectUris: [], grantTypes: [deviceCodeGrantType] });
  rp = await discoverRp(server.issuer, client.clientId);
});
afterAll(() => server.close());

const from = (ip: string) => createBrowser({ headers: { 'x-forwarded-for': ip } });
const wrongCodes = ['BCDF-BCDF', 'GHJK-GHJK', 'LMNP-LMNP', 'QRST-QRST', 'VWXZ-VWXZ', 'BBBB-CCCC', 'DDDD-FFFF', 'GGGG-HHHH'];

describe('the limit on guessing user codes (DEVICE_CODE_MAX_ATTEMPTS_PER_MINUTE)', () => {
  it('refuses an IP that guessed too often, even with a right code, until the minute is over; other IPs are not affected', async () => {
    const { user_code: userCode } = await oidc.initiateDeviceAuthorization(rp, { scope: 'openid' });
    const attacker = from('198.51.100.7');
    for (const guess of wrongCodes.slice(0, maxAttemptsPerMinute)) {
      const page = await enterUserCode(attacker, server.issuer, guess);
      expect(textOf(page.html, '.error')).toContain('not right');
    }
    const refused = await enterUserCode(attacker, server.issuer, userCode);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.html).toContain('id="device-throttled"');
    expect(refused.html).not.toContain('Only continue');

    const someoneElse = await enterUserCode(from('203.0.113.9'), server.issuer, userCode);
    expect(someoneElse.html).toContain('Only continue if you started this sign-in yourself');

    clock.time += 60_000;
    const later = await enterUserCode(attacker, server.issuer, userCode);
    expect(later.html).toContain('Only continue if you started this sign-in yourself');
  });

  it('counts guesses sent at once like guesses sent one by one', async () => {
    clock.time += 60_000;
    const attacker = from('198.51.100.8');
    const form = await attacker.follow(`${server.issuer}/device`);
    const pages = await Promise.all(wrongCodes.map((guess) => attacker.submit(form, 'form[action="/device"]', { user_code: guess })));
    expect(pages.filter((page) => page.status === 429)).toHaveLength(wrongCodes.length - maxAttemptsPerMinute);
  });

  it('does not count codes that were found: a person confirming their own codes is never locked out', async () => {
    clock.time += 60_000;
    const person = from('198.51.100.9');
    for (let i = 0; i < maxAttemptsPerMinute + 2; i++) {
      const { user_code: userCode } = await oidc.initiateDeviceAuthorization(rp, { scope: 'openid' });
      const page = await enterUserCode(person, server.issuer, userCode);
      expect(page.html).toContain('Only continue if you started this sign-in yourself');
    }
  });
});

describe('the device endpoints as anonymous requests that store something', () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startTestServer({ statefulRequestsPerIpPerMinute: 3, anonymousRequestMaxBytes: 1024 });
  });
  afterAll(() => limited.close());

  const deviceAuthorization = (body: string) => fetch(`${limited.issuer}/device/auth`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body,
  });

  it('refuses an oversized device authorization request before storing it, and limits them per IP with OAuth JSON', async () => {
    const client = await createClient(limited.services, { isPublic: true, redirectUris: [], grantTypes: [deviceCodeGrantType] });
    const oversized = await deviceAuthorization(`client_id=${client.clientId}&scope=openid&state=${'x'.repeat(2000)}`);
    expect(oversized.status).toBe(400);
    expect((await oversized.json()).error).toBe('invalid_request');
    const stored = async () => Number((await limited.database('oidc_payloads').where({ model: 'DeviceCode' }).count({ count: '*' }))[0].count);
    expect(await stored()).toBe(0);

    const answers = await Promise.all(Array.from({ length: 6 }, () => deviceAuthorization(`client_id=${client.clientId}&scope=openid`)));
    // The oversized request was refused before it was counted.
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(3);
    const refused = answers.find((answer) => answer.status === 429)!;
    expect(refused.headers.get('retry-after')).toBeTruthy();
    expect((await refused.json()).error).toBe('temporarily_unavailable');
    expect(await stored()).toBe(3);
  });
});
