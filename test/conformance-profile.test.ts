import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser } from './support/browser.js';
import { runCliCapturing } from './support/cli.js';
import { authorizeWith, redeem } from './support/conformance.js';
import { createClient, password } from './support/fixtures.js';
import { discoverRp } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// The profile claims behind oidcc-scope-profile, set by an operator: `users create --locale --zoneinfo` and
// `users update`, and what the profile scope then releases.

let server: TestServer;
let rp: oidc.Configuration;

beforeAll(async () => {
  server = await startTestServer();
  const client = await createClient(server.services);
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(() => server.close());

const cli = (...argv: string[]) => runCliCapturing([...argv, '--json'], { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir }, undefined, password);

async function profileOf(email: string) {
  const flow = await authorizeWith(rp, createBrowser(), { scope: 'openid profile' }, { email, password });
  const tokens = await redeem(rp, flow);
  return oidc.fetchUserInfo(rp, tokens.access_token, tokens.claims()!.sub);
}

describe('profile claims set with the CLI', () => {
  it('users create --locale --zoneinfo stores them in canonical form, and the profile scope releases them', async () => {
    const created = await cli('users', 'create', '--email', 'locale@example.com', '--password-stdin', '--given-name', 'Ada', '--locale', 'fr-ca', '--zoneinfo', 'america/toronto');
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(created.stdout)).toMatchObject({ locale: 'fr-CA', zoneinfo: 'America/Toronto' });
    expect(await profileOf('locale@example.com')).toMatchObject({ given_name: 'Ada', locale: 'fr-CA', zoneinfo: 'America/Toronto', updated_at: expect.any(Number) });
  });

  it('users update changes them and moves updated_at; an empty value clears one', async () => {
    await cli('users', 'create', '--email', 'update@example.com', '--password-stdin', '--locale', 'en');
    const before = await server.services.accounts.findByEmail('update@example.com');
    const updated = await cli('users', 'update', '--email', 'update@example.com', '--locale', '', '--zoneinfo', 'Asia/Tokyo', '--family-name', 'Byron');
    expect(updated).toMatchObject({ code: 0, stderr: '' });
    const after = await server.services.accounts.findByEmail('update@example.com');
    expect(after).toMatchObject({ locale: null, zoneinfo: 'Asia/Tokyo', familyName: 'Byron' });
    expect(after!.updatedAt).toBeGreaterThanOrEqual(before!.updatedAt);
    const profile = await profileOf('update@example.com');
    expect(profile).toMatchObject({ family_name: 'Byron', zoneinfo: 'Asia/Tokyo', updated_at: Math.floor(after!.updatedAt / 1000) });
    expect(profile.locale).toBeUndefined();
  });

  it('refuses a locale or zoneinfo that is not one, and an update that names nothing, with one line and nothing stored', async () => {
    for (const argv of [
      ['users', 'create', '--email', 'bad-locale@example.com', '--password-stdin', '--locale', 'not a locale!'],
      ['users', 'create', '--email', 'bad-zone@example.com', '--password-stdin', '--zoneinfo', 'Mars/Olympus_Mons'],
      ['users', 'create', '--email', 'offset@example.com', '--password-stdin', '--zoneinfo', '+02:00'],
      ['users', 'update', '--email', 'locale@example.com'],
      ['users', 'update', '--email', 'nobody@example.com', '--locale', 'en'],
    ]) {
      const result = await cli(...argv);
      expect(result.code, argv.join(' ')).not.toBe(0);
      expect(result.stderr.trim().split('\n'), argv.join(' ')).toHaveLength(1);
    }
    for (const email of ['bad-locale@example.com', 'bad-zone@example.com', 'offset@example.com']) {
      expect(await server.services.accounts.findByEmail(email)).toBeUndefined();
    }
    expect(await server.services.accounts.findByEmail('locale@example.com')).toMatchObject({ locale: 'fr-CA' });
  });
});
