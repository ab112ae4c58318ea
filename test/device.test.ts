import * as oidc from 'openid-client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import { deviceCodeGrantType } from '../src/registry/client-rules.js';
import { createBrowser, textOf } from './support/browser.js';
import { approveDevice, enterUserCode } from './support/device.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

/** The counters' clock (throttle, polling interval): the real one unless a test freezes it. */
const clock: { frozen?: number } = {};
let server: TestServer;
let rp: oidc.Configuration;
let email: string;

beforeAll(async () => {
  server = await startTestServer({}, undefined, { now: () => clock.frozen ?? Date.now() });
  const client = await createClient(server.services, {
    clientId: 'terminal-tool', name: 'Terminal Tool', isPublic: true, redirectUris: [], postLogoutRedirectUris: [],
    grantTypes: [deviceCodeGrantType, 'refresh_token'],
  });
  rp = await discoverRp(server.issuer, client.clientId);
  email = (await createUser(server.services)).email;
});
afterAll(() => server.close());
afterEach(() => {
  delete clock.frozen;
  vi.useRealTimers();
});

/** A raw token request with the device code, as a device polls (RFC 8628 §3.4). */
async function poll(deviceCode: string) {
  const response = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: deviceCodeGrantType, device_code: deviceCode, client_id: 'terminal-tool' }),
  });
  return { status: response.status, body: await response.json() as Record<string, unknown> };
}

describe('the device authorization grant (RFC 8628)', () => {
  it('is advertised in discovery', async () => {
    const metadata = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json();
    expect(metadata.device_authorization_endpoint).toBe(`${server.issuer}/device/auth`);
    expect(metadata.grant_types_supported).toContain(deviceCodeGrantType);
  });

  it('signs a public client in: the person enters the code, confirms, signs in and allows; the device gets tokens', async () => {
    const authorization = await oidc.initiateDeviceAuthorization(rp, { scope: 'openid email offline_access' });
    // RFC 8628 §6.1: base-20 letters, no vowels or digits, in two groups of four.
    expect(authorization.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(authorization.verification_uri).toBe(`${server.issuer}/device`);
    expect(authorization.interval).toBe(1);
    expect(authorization.expires_in).toBe(600);
    const polling = oidc.pollDeviceAuthorizationGrant(rp, authorization);

    // Typed in lower case with the dash left out and spaces around it.
    const typed = ` ${authorization.user_code.replace('-', ' ').toLowerCase()} `;
    const browser = createBrowser();
    const confirmation = await enterUserCode(browser, server.issuer, typed);
    expect(confirmation.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(confirmation.headers.get('cache-control')).toContain('no-store');
    expect(textOf(confirmation.html, 'h1')).toContain('Terminal Tool');
    expect(textOf(confirmation.html, '.warning')).toContain('on a device you own');
    expect(confirmation.html).toContain('See your email address');
    expect(confirmation.html).toContain('Keep access while you are away');
    const done = await approveDevice(browser, server.issuer, authorization.user_code, { email, password });
    expect(done.status).toBe(200);
    expect(done.html).toContain('id="device-success"');
    expect(textOf(done.html, '.lead')).toContain('Terminal Tool is signed in');

    const tokens = await polling;
    expect(tokens.access_token).toBeTruthy();
    expect(tokens.refresh_token).toBeTruthy();
    expect(tokens.claims()?.sub).toBeTruthy();
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    expect(refreshed.access_token).toBeTruthy();

    // The code is spent: entering it again is refused, and the device code cannot be redeemed twice.
    const again = await enterUserCode(createBrowser(), server.issuer, authorization.user_code);
    expect(textOf(again.html, '.error')).toContain('already been used');
    expect((await poll(authorization.device_code)).body.error).toBe('invalid_grant');
  });

  it('answers authorization_pending while the person has not finished, and slow_down to a device polling too fast', async () => {
    const authorization = await oidc.initiateDeviceAuthorization(rp, { scope: 'openid' });
    clock.frozen = Date.now();
    expect(await poll(authorization.device_code)).toMatchObject({ status: 400, body: { error: 'authorization_pending' } });
    expect(await poll(authorization.device_code)).toMatchObject({ status: 400, body: { error: 'slow_down' } });
    clock.frozen += 1000;
    expect(await poll(authorization.device_code)).toMatchObject({ status: 400, body: { error: 'authorization_pending' } });
  });

  it('answers access_denied when the person cancels on the confirmation page, and shows that it was cancelled', async () => {
    const authorization = await oidc.initiateDeviceAuthorization(rp, { scope: 'openid' });
    const browser = createBrowser();
    const confirmation = await enterUserCode(browser, server.issuer, authorization.user_code);
    const cancelled = await browser.submit(confirmation, '#device-abort');
    expect(cancelled.html).toContain('id="device-denied"');
    await expect(oidc.pollDeviceAuthorizationGrant(rp, authorization)).rejects.toMatchObject({ error: 'access_denied' });
  });

  it('answers access_denied when the person denies on the consent page', async () => {
    const authorization = await oidc.initiateDeviceAuthorization(rp, { scope: 'openid email' });
    const denied = await approveDevice(createBrowser(), server.issuer, authorization.user_code, { email, password, consent: false });
    expect(denied.html).toContain('id="device-denied"');
    expect((await poll(authorization.device_code)).body.error).toBe('access_denied');
  });

  it('answers expired_token once DEVICE_CODE_TTL has passed, and the page says the code expired', async () => {
    const authorization = await oidc.initiateDeviceAuthorization(rp, { scope: 'openid' });
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + (server.config.deviceFlow.codeTtlSeconds + 1) * 1000);
    expect(await poll(authorization.device_code)).toMatchObject({ status: 400, body: { error: 'expired_token' } });
    const page = await enterUserCode(createBrowser(), server.issuer, authorization.user_code);
    expect(page.html).toContain('id="device-expired"');
  });

  it('shows a wrong code again with a message, and refuses a client that is not allowed the grant', async () => {
    const page = await enterUserCode(createBrowser(), server.issuer, 'BCDF-GHJK');
    expect(textOf(page.html, '.error')).toContain('not right');
    expect(page.html).toContain('value="BCDF-GHJK"');

    const webApp = await createClient(server.services);
    const response = await fetch(`${server.issuer}/device/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${webApp.clientId}:${webApp.clientSecret}`).toString('base64')}` },
      body: new URLSearchParams({ scope: 'openid' }),
    });
    // oidc-provider answers invalid_request here (RFC 6749 §5.2 would also allow unauthorized_client); either way, no code.
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error_description: `${deviceCodeGrantType} is not allowed for this client` });
  });

  it('refuses a code posted without this browser\'s form secret (a form on another site), and asks for it again', async () => {
    const { user_code: userCode } = await oidc.initiateDeviceAuthorization(rp, { scope: 'openid' });
    const browser = createBrowser();
    await browser.follow(`${server.issuer}/device`);
    const forged = await browser.follow(`${server.issuer}/device`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ user_code: userCode, confirm: 'yes' }),
    });
    expect(forged.status).toBe(400);
    expect(textOf(forged.html, '.error')).toContain('did not come from this site');
    expect(forged.html).not.toContain('Only continue');
    // The code is untouched: its owner can still use it.
    expect((await enterUserCode(createBrowser(), server.issuer, userCode)).html).toContain('Only continue');
  });

  it('registers a device client without redirect URIs, but still asks a web app for one', async () => {
    const cli = await createClient(server.services, { isPublic: true, redirectUris: [], grantTypes: [deviceCodeGrantType] });
    expect(cli.redirectUris).toEqual([]);
    await expect(createClient(server.services, { redirectUris: [], grantTypes: ['authorization_code', deviceCodeGrantType] }))
      .rejects.toThrow(/needs at least one --redirect-uri/);
  });

  it('reads its settings, with safe defaults, and refuses bad ones', () => {
    expect(loadConfig({}).deviceFlow).toEqual({ codeTtlSeconds: 600, pollIntervalSeconds: 5, maxAttemptsPerMinute: 10 });
    expect(loadConfig({ DEVICE_CODE_TTL: '300', DEVICE_CODE_POLL_INTERVAL: '10', DEVICE_CODE_MAX_ATTEMPTS_PER_MINUTE: '3' }).deviceFlow)
      .toEqual({ codeTtlSeconds: 300, pollIntervalSeconds: 10, maxAttemptsPerMinute: 3 });
    expect(() => loadConfig({ DEVICE_CODE_TTL: '0', DEVICE_CODE_POLL_INTERVAL: 'fast', DEVICE_CODE_MAX_ATTEMPTS_PER_MINUTE: '-1' }))
      .toThrow(/DEVICE_CODE_TTL.*DEVICE_CODE_POLL_INTERVAL.*DEVICE_CODE_MAX_ATTEMPTS_PER_MINUTE/);
  });
});
