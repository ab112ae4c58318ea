import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator } from './support/authenticator.js';
import { createBrowser, textOf } from './support/browser.js';
import { runCliCapturing } from './support/cli.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { csrfOf, enrolPasskey, passkeyLoginPage, postForOptions, submitPasskey } from './support/passkey-flows.js';
import { sendHttp } from './support/raw-http.js';
import { discoverRp, redirectUri } from './support/rp.js';
import { isAtCallback, shownRecoveryCodes, shownSecret, startAuthorization, submitPassword, totpCode } from './support/second-factor.js';
import { startTestServer, type TestServer } from './support/server.js';

const mfaAcr = 'urn:latchkey:acr:mfa';

describe('passkeys with MFA=required', () => {
  let server: TestServer;
  let rp: Awaited<ReturnType<typeof discoverRp>>;
  beforeAll(async () => {
    server = await startTestServer({ mfa: { policy: 'required', totpDriftSteps: 1, passkeyTimeoutSeconds: 300 } });
    const client = await createClient(server.services, { skipConsent: true });
    rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
  });
  afterAll(() => server.close());

  it('counts a passkey as a factor: passkey-first is enough, the last factor cannot be removed, and the CLI lists and resets it', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    const authenticator = createAuthenticator({ origin: server.issuer, rpId: 'localhost' });
    // MFA=required: the first sign-in enrols an authenticator app.
    const flow = await startAuthorization(rp, browser);
    const enrolPage = await submitPassword(browser, flow.page, user.email, password);
    const codesPage = await browser.submit(enrolPage, 'form[action$="/mfa/enrol"]', { code: totpCode(shownSecret(enrolPage), Date.now()) });
    expect(shownRecoveryCodes(codesPage)).toHaveLength(10);
    const continueTo = codesPage.html.match(/href="([^"]+\/auth\/[^"]+)"/)![1].replace(/&amp;/g, '&');
    expect(isAtCallback(await browser.follow(continueTo, {}, redirectUri))).toBe(true);

    // A passkey as the second factor: added (no new recovery codes), then the app removed; the passkey is the last.
    const added = await enrolPasskey(browser, server.issuer, authenticator, 'Phone');
    expect(textOf(added.page.html, '[role=status]')).toBe('The passkey "Phone" was added.');
    const overview = await browser.follow(`${server.issuer}/account/security`);
    const withoutApp = await browser.submit(overview, 'form[action="/account/security/totp/remove"]', { password });
    expect(textOf(withoutApp.html, '[role=status]')).toBe('The authenticator app was removed.');
    expect(withoutApp.html).not.toContain('Remove this passkey');
    const [passkey] = (await server.services.secondFactors.list(user.id)).factors;
    const refused = await browser.request(`${server.issuer}/account/security/passkeys/${passkey.id}/remove`, {
      method: 'POST', body: new URLSearchParams({ csrf: csrfOf(withoutApp, 'form.passkey'), password }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(refused.status).toBe(409);
    expect(await refused.text()).toContain('this passkey is your last second factor, so it cannot be removed');

    // The password, then the passkey (the factor page offers it, and recovery codes instead of app codes).
    const second = createBrowser();
    const secondFlow = await startAuthorization(rp, second);
    const factorPage = await submitPassword(second, secondFlow.page, user.email, password);
    expect(textOf(factorPage.html, 'label[for=code]')).toBe('Recovery code');
    const { json } = await postForOptions<Parameters<typeof authenticator.assert>[0]>(second, `${factorPage.url}/passkey/options`, { csrf: csrfOf(factorPage, 'form.passkey') });
    const done = await submitPasskey(second, factorPage, authenticator.assert(json.options!), redirectUri);
    expect((await secondFlow.redeem(done)).claims()).toMatchObject({ amr: ['pwd', 'pop', 'mfa'], acr: mfaAcr });

    // Passkey-first needs nothing more, even here.
    const third = createBrowser();
    const first = await passkeyLoginPage(rp, third);
    const firstDone = await submitPasskey(third, first.page, authenticator.assert(first.options), redirectUri);
    expect((await first.redeem(firstDone)).claims()).toMatchObject({ sub: user.id, amr: ['pop', 'mfa'], acr: mfaAcr });

    // The operator's view and reset.
    const env = { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir };
    const listed = await runCliCapturing(['users', 'mfa', '--email', user.email, '--json'], env);
    expect(JSON.parse(listed.stdout)).toMatchObject({ factors: [{ kind: 'passkey', label: 'Phone' }] });
    expect(listed.stdout).not.toContain(authenticator.credentials[0].id);
    const reset = await runCliCapturing(['users', 'mfa', 'reset', '--email', user.email], env);
    expect(reset.code).toBe(0);
    const fourth = createBrowser();
    const afterReset = await passkeyLoginPage(rp, fourth);
    const refusedAfterReset = await submitPasskey(fourth, afterReset.page, authenticator.assert(afterReset.options), redirectUri);
    expect(refusedAfterReset.status).toBe(400);
    expect(textOf(refusedAfterReset.html, '[role=alert]')).toContain('could not sign you in');
  });
});

describe('an issuer at an IP address', () => {
  const logLines: string[] = [];
  let server: TestServer;
  const issuer = 'http://127.0.0.1:1';
  beforeAll(async () => {
    server = await startTestServer({ issuer }, undefined, { logDestination: { write: (line: string) => void logLines.push(line) } });
  });
  afterAll(() => server.close());

  it('offers no passkeys, serves none of their routes, and says why in one start-up line', async () => {
    const notices = logLines.filter((line) => line.includes('passkeys are off'));
    expect(notices).toHaveLength(1);
    expect(JSON.parse(notices[0])).toMatchObject({ event: 'passkeys.unavailable' });
    expect(notices[0]).toContain('use a host name (e.g. http://localhost:1)');

    const client = await createClient(server.services, { skipConsent: true });
    const headers = { host: '127.0.0.1:1', accept: 'text/html' };
    const authorize = await sendHttp(server.port, {
      target: `/auth?client_id=${client.clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(redirectUri)}`
        + '&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256',
      headers,
    });
    expect(authorize.status).toBe(303);
    const cookie = (authorize.headers['set-cookie'] ?? []).map((value) => value.split(';')[0]).join('; ');
    const loginPage = await sendHttp(server.port, { target: authorize.headers.location!.replace(issuer, ''), headers: { ...headers, cookie } });
    expect(loginPage.status).toBe(200);
    expect(loginPage.body).toContain('name="password"');
    expect(loginPage.body).not.toContain('passkey');
    expect((await sendHttp(server.port, { target: '/assets/passkeys.js', headers })).status).toBe(404);
    const uid = authorize.headers.location!.split('/').pop();
    expect((await sendHttp(server.port, { method: 'POST', target: `/interaction/${uid}/passkey/options`, headers: { ...headers, cookie } })).status).toBe(404);
  });
});
