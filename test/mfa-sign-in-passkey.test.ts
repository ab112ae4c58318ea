import { parse } from 'node-html-parser';
import type * as oidc from 'openid-client';
import type { PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator, type Authenticator } from './support/authenticator.js';
import { createBrowser, textOf, type Browser, type Page } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { csrfOf, postForOptions, submitPasskey } from './support/passkey-flows.js';
import { sendHttp, type RawAnswer } from './support/raw-http.js';
import { discoverRp, redirectUri, signIn } from './support/rp.js';
import {
  isAtCallback, shownRecoveryCodes, shownSecret, startAuthorization, submitCode, submitPassword, totpCode,
} from './support/second-factor.js';
import { startTestServer, type TestServer } from './support/server.js';

// A passkey as the factor someone sets up inside a sign-in (MFA=required, or an app registered with --require-mfa):
// docs/mfa.md, "What people see".

const mfaAcr = 'urn:latchkey:acr:mfa';
const form = { 'content-type': 'application/x-www-form-urlencoded' };
const required = { policy: 'required', totpDriftSteps: 1, passkeyTimeoutSeconds: 300 } as const;

const newAuthenticator = (server: TestServer) => createAuthenticator({ origin: server.issuer, rpId: 'localhost' });

/** Where the page's passkey form asks for its options (data-options), as public/passkeys.js reads it. */
const optionsUrlOf = (page: Page) => new URL(parse(page.html).querySelector('form.passkey')!.getAttribute('data-options')!, page.url).href;

/** Asks the setup page of a sign-in for registration options, as public/passkeys.js does. */
const registrationOptions = (browser: Browser, page: Page) =>
  postForOptions<PublicKeyCredentialCreationOptionsJSON>(browser, optionsUrlOf(page), { csrf: csrfOf(page, 'form.passkey') });

/** The recovery codes page's "continue" link, followed to the app. */
async function continueToApp(browser: Browser, codesPage: Page) {
  const continueTo = codesPage.html.match(/href="([^"]+\/auth\/[^"]+)"/)![1].replace(/&amp;/g, '&');
  return browser.follow(continueTo, {}, redirectUri);
}

describe('MFA=required: the setup page inside a sign-in offers a passkey', () => {
  let server: TestServer;
  let rp: oidc.Configuration;
  beforeAll(async () => {
    server = await startTestServer({ mfa: required });
    const client = await createClient(server.services, { skipConsent: true });
    rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
  });
  afterAll(() => server.close());

  /** A user without a factor, through the password of a new sign-in to the setup page. */
  async function toSetupPage() {
    const user = await createUser(server.services);
    const browser = createBrowser();
    const flow = await startAuthorization(rp, browser);
    const page = await submitPassword(browser, flow.page, user.email, password);
    expect(textOf(page.html, 'h1')).toBe('Set up two-step sign-in');
    return { user, browser, page, redeem: flow.redeem };
  }

  it('adds a passkey, shows the recovery codes, and finishes the sign-in with amr pwd+pop+mfa; the next sign-in asks for it', async () => {
    const { user, browser, page, redeem } = await toSetupPage();
    const passkeyForm = parse(page.html).querySelector('form.passkey')!;
    expect(passkeyForm.getAttribute('data-passkey')).toBe('register');
    expect(page.html).toContain('src="/assets/passkeys.js"');
    expect(page.html).not.toMatch(/<script>/);
    expect(shownSecret(page)).toMatch(/^[A-Z2-7]{32}$/); // the authenticator app is offered as well

    const { status, json } = await registrationOptions(browser, page);
    expect(status).toBe(200);
    expect(json.options).toMatchObject({
      rp: { id: 'localhost' }, user: { name: user.email }, attestation: 'none',
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' }, excludeCredentials: [],
    });
    const authenticator = newAuthenticator(server);
    const codesPage = await browser.submit(page, 'form.passkey', { response: JSON.stringify(authenticator.register(json.options!)) });
    expect(textOf(codesPage.html, 'h1')).toBe('Your recovery codes');
    const codes = shownRecoveryCodes(codesPage);
    expect(codes).toHaveLength(10);
    const finished = await continueToApp(browser, codesPage);
    expect(isAtCallback(finished)).toBe(true);
    expect((await redeem(finished)).claims()).toMatchObject({ sub: user.id, amr: ['pwd', 'pop', 'mfa'], acr: mfaAcr });

    expect(await server.services.secondFactors.list(user.id)).toMatchObject({ factors: [{ kind: 'passkey', label: 'Passkey' }], recoveryCodesLeft: 10 });
    await server.services.audit.settled();
    const events = await server.services.auditEvents.list({ accountId: user.id, types: ['mfa.enrolled'], limit: 10 });
    expect(events).toMatchObject([{ details: { kind: 'passkey', where: 'sign_in', passkeyId: expect.any(String) } }]);

    // The next sign-in: the password, then the passkey as the second factor (or a recovery code).
    const next = createBrowser();
    const nextFlow = await startAuthorization(rp, next);
    const factorPage = await submitPassword(next, nextFlow.page, user.email, password);
    expect(textOf(factorPage.html, 'h1')).toBe('Two-step sign-in');
    const assertionOptions = await postForOptions<Parameters<Authenticator['assert']>[0]>(next, optionsUrlOf(factorPage), { csrf: csrfOf(factorPage, 'form.passkey') });
    const done = await submitPasskey(next, factorPage, authenticator.assert(assertionOptions.json.options!), redirectUri);
    expect((await nextFlow.redeem(done)).claims()).toMatchObject({ amr: ['pwd', 'pop', 'mfa'], acr: mfaAcr });
    const withCode = createBrowser();
    const codeFlow = await startAuthorization(rp, withCode);
    const codePage = await submitPassword(withCode, codeFlow.page, user.email, password);
    expect(isAtCallback(await submitCode(withCode, codePage, codes[0]))).toBe(true);
  });

  it('binds the challenge to its sign-in: an answer carried to another one is refused, and still works in its own', async () => {
    const a = await toSetupPage();
    const b = await toSetupPage();
    const { json } = await registrationOptions(a.browser, a.page);
    const authenticator = newAuthenticator(server);
    const answer = JSON.stringify(authenticator.register(json.options!));
    // B's own form (B's CSRF token) with A's answer.
    const inB = await b.browser.submit(b.page, 'form.passkey', { response: answer });
    expect(inB.status).toBe(400);
    expect(textOf(inB.html, '.error')).toBe('The passkey could not be added. Try again.');
    expect(textOf(inB.html, 'h1')).toBe('Set up two-step sign-in');
    expect(await server.services.secondFactors.hasFactor(b.user.id)).toBe(false);
    const inA = await a.browser.submit(a.page, 'form.passkey', { response: answer });
    expect(textOf(inA.html, 'h1')).toBe('Your recovery codes');
    // Used up: the same answer again in A finds no challenge (and the interaction is finished).
    const again = await a.browser.request(`${a.page.url}/enrol/passkey`, {
      method: 'POST', body: new URLSearchParams({ csrf: csrfOf(a.page, 'form.passkey'), response: answer }), headers: form,
    });
    expect(again.status).toBe(400);

    // A's credential, registered by B for B's own challenge: one credential never belongs to two accounts.
    const forB = await registrationOptions(b.browser, b.page);
    const copied = newAuthenticator(server).register(forB.json.options!, { credentialId: authenticator.credentials[0].id });
    const duplicate = await b.browser.submit(b.page, 'form.passkey', { response: JSON.stringify(copied) });
    expect(duplicate.status).toBe(409);
    expect(textOf(duplicate.html, '.error')).toBe('That passkey is already registered.');
    expect(await server.services.secondFactors.hasFactor(b.user.id)).toBe(false);
  });

  it('refuses an answer made for another origin, without user verification, or to a challenge never issued', async () => {
    const { user, browser, page } = await toSetupPage();
    for (const tampering of [{ origin: 'https://evil.example' }, { rpId: 'evil.example' }, { isUserVerified: false }]) {
      const { json } = await registrationOptions(browser, page);
      const refused = await browser.submit(page, 'form.passkey', { response: JSON.stringify(newAuthenticator(server).register(json.options!, tampering)) });
      expect(refused.status, JSON.stringify(tampering)).toBe(400);
      expect(textOf(refused.html, '.error')).toBe('The passkey could not be added. Try again.');
    }
    const made = newAuthenticator(server).register({ challenge: 'bm90LWlzc3VlZA', user: { id: 'eA', name: 'x', displayName: 'x' } } as never);
    expect((await browser.submit(page, 'form.passkey', { response: JSON.stringify(made) })).status).toBe(400);
    expect(await server.services.secondFactors.hasFactor(user.id)).toBe(false);
  });
});

describe('an app registered with --require-mfa: who may add a passkey inside its sign-in', () => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let strictRp: oidc.Configuration;
  beforeAll(async () => {
    server = await startTestServer();
    const client = await createClient(server.services, { skipConsent: true });
    rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const strict = await createClient(server.services, { skipConsent: true, requireMfa: true });
    strictRp = await discoverRp(server.issuer, strict.clientId, strict.clientSecret!);
  });
  afterAll(() => server.close());

  /** POSTs to an enrolment route of the interaction of `page` with its CSRF token; the status and the page. */
  async function postToInteraction(browser: Browser, page: Page, route: string, fields: Record<string, string> = {}) {
    const interaction = page.url.match(/^(.*\/interaction\/[^/?]+)/)![1];
    const csrf = parse(page.html).querySelector('input[name="csrf"]')!.getAttribute('value')!;
    const response = await browser.request(`${interaction}${route}`, { method: 'POST', body: new URLSearchParams({ csrf, ...fields }), headers: form });
    return { status: response.status, text: await response.text() };
  }

  const forgedAnswer = () => JSON.stringify(newAuthenticator(server).register({ challenge: 'bm90LWlzc3VlZA', user: { id: 'eA', name: 'x', displayName: 'x' } } as never));

  it('refuses a session cookie alone: without the password in this sign-in there are no options and no passkey', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    await signIn(rp, browser, { email: user.email, password });
    // The strict app: the session has no second factor and the person none at all, so the password form.
    const strict = await startAuthorization(strictRp, browser);
    expect(strict.page.html).toContain('name="password"');
    const options = await postToInteraction(browser, strict.page, '/mfa/enrol/passkey/options');
    expect(options.status).toBe(400);
    expect(options.text).toContain('This sign-in has no second step waiting');
    expect(options.text).not.toContain('challenge');
    const added = await postToInteraction(browser, strict.page, '/mfa/enrol/passkey', { response: forgedAnswer() });
    expect(added.status).toBe(400);
    expect(await server.services.secondFactors.hasFactor(user.id)).toBe(false);
  });

  it('refuses someone who already has a factor: after the password, in a step-up, and when one was added meanwhile', async () => {
    // A factor already, and the password passed in this sign-in: the factor page, and no enrolment.
    const withApp = await createUser(server.services);
    const appBrowser = createBrowser();
    await signIn(rp, appBrowser, { email: withApp.email, password });
    const started = await appBrowser.submit(await appBrowser.follow(`${server.issuer}/account/security`), 'form[action="/account/security/totp"]');
    await appBrowser.submit(started, 'form[action="/account/security/totp/confirm"]', { code: totpCode(shownSecret(started), Date.now()), password });
    const afterPassword = createBrowser();
    const flow = await startAuthorization(strictRp, afterPassword);
    const factorPage = await submitPassword(afterPassword, flow.page, withApp.email, password);
    expect(textOf(factorPage.html, 'h1')).toBe('Two-step sign-in');
    for (const route of ['/mfa/enrol/passkey/options', '/mfa/enrol/passkey']) {
      const refused = await postToInteraction(afterPassword, factorPage, route, { response: forgedAnswer() });
      expect(refused.status, route).toBe(400);
      expect(refused.text).toContain('A second factor is already set up');
    }

    // The password-only session of the same person, stepped up by the strict app: the code page, and no enrolment.
    const stepUp = await startAuthorization(strictRp, appBrowser);
    expect(stepUp.page.html).toContain('name="code"');
    const refused = await postToInteraction(appBrowser, stepUp.page, '/mfa/enrol/passkey/options');
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('A second factor is already set up');

    // No factor at the password, options given, and an authenticator app added meanwhile: the answer is refused.
    const user = await createUser(server.services);
    const browser = createBrowser();
    const raced = await startAuthorization(strictRp, browser);
    const setupPage = await submitPassword(browser, raced.page, user.email, password);
    const { json } = await registrationOptions(browser, setupPage);
    expect(json.options).toBeDefined();
    const names = { issuer: 'localhost', account: user.email };
    const enrolment = await server.services.secondFactors.beginTotp(user.id, names);
    expect(await server.services.secondFactors.confirmTotp(user.id, totpCode(enrolment.secret, Date.now()))).toBeDefined();
    const late = await browser.submit(setupPage, 'form.passkey', { response: JSON.stringify(newAuthenticator(server).register(json.options!)) });
    expect(late.status).toBe(400);
    expect(late.html).toContain('A second factor is already set up');
    expect((await server.services.secondFactors.list(user.id)).factors).toMatchObject([{ kind: 'totp' }]);
  });
});

describe('MFA=required at an issuer with an IP address (no passkeys)', () => {
  let server: TestServer;
  const issuer = 'http://127.0.0.1:1';
  beforeAll(async () => {
    server = await startTestServer({ issuer, mfa: required });
  });
  afterAll(() => server.close());

  it('offers the authenticator app alone on the setup page, and no passkey routes', async () => {
    const user = await createUser(server.services);
    const client = await createClient(server.services, { skipConsent: true });
    const cookies = new Map<string, string>();
    const send = async (options: { method?: string; target: string; body?: string }): Promise<RawAnswer> => {
      const headers: Record<string, string> = { host: '127.0.0.1:1', accept: 'text/html', cookie: [...cookies].map(([name, value]) => `${name}=${value}`).join('; ') };
      if (options.body) headers['content-type'] = 'application/x-www-form-urlencoded';
      const answer = await sendHttp(server.port, { ...options, target: options.target.replace(issuer, ''), headers });
      for (const cookie of answer.headers['set-cookie'] ?? []) {
        const [pair] = cookie.split(';');
        const [name, value] = [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)];
        cookies.set(name, value);
      }
      return answer;
    };
    const authorize = await send({
      target: `/auth?client_id=${client.clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(redirectUri)}`
        + '&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256',
    });
    const interaction = authorize.headers.location!.replace(issuer, '');
    const loginPage = await send({ target: interaction });
    const csrf = parse(loginPage.body).querySelector('input[name="csrf"]')!.getAttribute('value')!;
    const afterPassword = await send({ method: 'POST', target: `${interaction}/login`, body: new URLSearchParams({ csrf, email: user.email, password }).toString() });
    expect(afterPassword.status).toBe(303);
    const setupPage = await send({ target: afterPassword.headers.location! });
    expect(textOf(setupPage.body, 'h1')).toBe('Set up two-step sign-in');
    expect(setupPage.body).toContain('code class="secret"');
    expect(setupPage.body).not.toContain('passkey');
    const options = await send({ method: 'POST', target: `${interaction}/mfa/enrol/passkey/options`, body: new URLSearchParams({ csrf }).toString() });
    expect(options.status).toBe(404);
  });
});
