import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as oidc from 'openid-client';
import { createAuthenticator, type Authenticator } from './support/authenticator.js';
import { createBrowser, textOf } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { csrfOf, enrolPasskey, passkeyLoginPage, postForOptions, submitPasskey } from './support/passkey-flows.js';
import { discoverRp, redirectUri, signIn } from './support/rp.js';
import { isAtCallback, startAuthorization, submitPassword } from './support/second-factor.js';
import { startTestServer, type TestServer } from './support/server.js';

const mfaAcr = 'urn:latchkey:acr:mfa';
let server: TestServer;
let rp: oidc.Configuration;
const logLines: string[] = [];
/** Every challenge the tests were given: none may appear in a log line. */
const challengesSeen: string[] = [];

beforeAll(async () => {
  server = await startTestServer({}, undefined, { logDestination: { write: (line: string) => void logLines.push(line) } });
  const client = await createClient(server.services, { skipConsent: true });
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(async () => {
  await server.close();
  for (const challenge of challengesSeen) expect(logLines.join('\n')).not.toContain(challenge);
});

const newAuthenticator = () => createAuthenticator({ origin: server.issuer, rpId: 'localhost' });

/** A user signed in with the password in `browser`, who then added a passkey held by `authenticator`. */
async function userWithPasskey() {
  const user = await createUser(server.services);
  const browser = createBrowser();
  const authenticator = newAuthenticator();
  await signIn(rp, browser, { email: user.email, password });
  const enrolled = await enrolPasskey(browser, server.issuer, authenticator);
  challengesSeen.push(enrolled.challenge);
  return { user, browser, authenticator, enrolled };
}

async function loginPage(extra: Record<string, string> = {}) {
  const browser = createBrowser();
  const flow = await passkeyLoginPage(rp, browser, extra);
  challengesSeen.push(flow.options.challenge);
  return { browser, ...flow };
}

async function auditTypes(accountId: string) {
  await server.services.audit.settled();
  return (await server.services.auditEvents.list({ accountId, limit: 100 })).map((event) => event.type);
}

describe('passkeys over HTTP', () => {
  it('serves the browser scripts from Latchkey itself, with a CSP that lets them ask for options', async () => {
    for (const script of ['/assets/simplewebauthn-browser.js', '/assets/passkeys.js']) {
      const response = await fetch(`${server.issuer}${script}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      expect(response.headers.get('cache-control')).toBe('public, max-age=3600');
      expect(response.headers.get('etag')).toBeTruthy();
    }
    expect(await (await fetch(`${server.issuer}/assets/simplewebauthn-browser.js`)).text()).toContain('SimpleWebAuthnBrowser');
    const { page } = await loginPage();
    expect(page.headers.get('content-security-policy')).toContain("connect-src 'self'");
    expect(page.html).toContain('src="/assets/passkeys.js"');
    expect(page.html).not.toMatch(/<script>/);
  });

  it('adds a passkey (with recovery codes, as the first factor) and signs in with it alone: amr pop+mfa, acr mfa', async () => {
    const { user, authenticator, enrolled } = await userWithPasskey();
    expect(textOf(enrolled.page.html, 'h1')).toBe('Your recovery codes');
    expect(await server.services.secondFactors.list(user.id)).toMatchObject({ factors: [{ kind: 'passkey', label: 'Laptop' }], recoveryCodesLeft: 10 });

    const { browser, page, options, redeem } = await loginPage();
    expect(options).toMatchObject({ rpId: 'localhost', userVerification: 'required', allowCredentials: [] });
    const done = await submitPasskey(browser, page, authenticator.assert(options), redirectUri);
    expect(isAtCallback(done)).toBe(true);
    const claims = (await redeem(done)).claims()!;
    expect(claims).toMatchObject({ sub: user.id, amr: ['pop', 'mfa'], acr: mfaAcr });
    expect(await auditTypes(user.id)).toEqual(expect.arrayContaining(['mfa.enrolled', 'sign_in.success']));
  });

  it('uses a challenge once: the same assertion again is refused, and so is one for an earlier challenge', async () => {
    const { authenticator } = await userWithPasskey();
    const { browser, page, options, csrf } = await loginPage();
    const assertion = authenticator.assert(options);
    const post = () => browser.request(`${page.url}/passkey`, {
      method: 'POST', body: new URLSearchParams({ csrf, response: JSON.stringify(assertion) }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    // The first answer finishes the interaction (a redirect to resume it); the same answer again, in the same
    // interaction, finds its challenge used up.
    expect((await post()).status).toBe(303);
    const replayed = await post();
    expect(replayed.status).toBe(400);
    expect(await replayed.text()).toContain('could not sign you in');

    // Asking for options again replaces the outstanding challenge: an answer to the first one is refused.
    const second = await loginPage();
    const stale = authenticator.assert(second.options);
    await postForOptions(second.browser, `${second.page.url}/passkey/options`, { csrf: second.csrf });
    const refused = await submitPasskey(second.browser, second.page, stale, redirectUri);
    expect(refused.status).toBe(400);
  });

  it('lets one of three requests carrying the same assertion at once through', async () => {
    const { authenticator } = await userWithPasskey();
    const { browser, page, options, csrf } = await loginPage();
    const body = new URLSearchParams({ csrf, response: JSON.stringify(authenticator.assert(options)) }).toString();
    const answers = await Promise.all(Array.from({ length: 3 }, () => browser.request(`${page.url}/passkey`, {
      method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })));
    expect(answers.map((answer) => answer.status).sort()).toEqual([303, 400, 400]);
  });

  it('binds the challenge to its interaction: an assertion for interaction A is refused in B, and still works in A', async () => {
    const { authenticator } = await userWithPasskey();
    const browser = createBrowser();
    const a = await passkeyLoginPage(rp, browser);
    const b = await passkeyLoginPage(rp, browser);
    challengesSeen.push(a.options.challenge, b.options.challenge);
    expect(b.page.url).not.toBe(a.page.url);
    const forA = authenticator.assert(a.options);
    const inB = await submitPasskey(browser, b.page, forA, redirectUri);
    expect(inB.status).toBe(400);
    expect(isAtCallback(await submitPasskey(browser, a.page, forA, redirectUri))).toBe(true);
  });

  it('refuses an assertion made for another origin or another RP ID, or of another type', async () => {
    const { authenticator } = await userWithPasskey();
    for (const tampering of [{ origin: 'http://localhost:1' }, { origin: 'https://evil.example' }, { rpId: 'evil.example' }, { type: 'webauthn.create' }]) {
      const { browser, page, options } = await loginPage();
      const refused = await submitPasskey(browser, page, authenticator.assert(options, tampering), redirectUri);
      expect(refused.status, JSON.stringify(tampering)).toBe(400);
    }
  });

  it('requires user verification for passkey-first, not after a password', async () => {
    const { user, authenticator } = await userWithPasskey();
    const first = await loginPage();
    expect((await submitPasskey(first.browser, first.page, authenticator.assert(first.options, { isUserVerified: false }), redirectUri)).status).toBe(400);

    const browser = createBrowser();
    const flow = await startAuthorization(rp, browser);
    const factorPage = await submitPassword(browser, flow.page, user.email, password);
    expect(textOf(factorPage.html, 'h1')).toBe('Two-step sign-in');
    const { json } = await postForOptions<Parameters<Authenticator['assert']>[0]>(browser, `${factorPage.url}/passkey/options`, { csrf: csrfOf(factorPage, 'form.passkey') });
    challengesSeen.push(json.options!.challenge);
    expect(json.options).toMatchObject({ userVerification: 'preferred', allowCredentials: [{ id: authenticator.credentials[0].id }] });
    const done = await submitPasskey(browser, factorPage, authenticator.assert(json.options!, { isUserVerified: false }), redirectUri);
    expect((await flow.redeem(done)).claims()).toMatchObject({ sub: user.id, amr: ['pwd', 'pop', 'mfa'], acr: mfaAcr });
  });

  it("does not take someone else's passkey as the second factor", async () => {
    const mallory = await userWithPasskey();
    const victim = await userWithPasskey();
    const browser = createBrowser();
    const flow = await startAuthorization(rp, browser);
    const factorPage = await submitPassword(browser, flow.page, victim.user.email, password);
    const { json } = await postForOptions<Parameters<Authenticator['assert']>[0]>(browser, `${factorPage.url}/passkey/options`, { csrf: csrfOf(factorPage, 'form.passkey') });
    challengesSeen.push(json.options!.challenge);
    // Mallory's authenticator signs the victim's challenge with Mallory's own credential.
    const forged = mallory.authenticator.assert({ ...json.options!, allowCredentials: [] });
    const refused = await submitPasskey(browser, factorPage, forged, redirectUri);
    expect(refused.status).toBe(200);
    expect(textOf(refused.html, '[role=alert]')).toContain('That passkey did not work');
  });

  it('registers a credential id once: the same credential for a second account is refused', async () => {
    const { authenticator } = await userWithPasskey();
    const other = await createUser(server.services);
    const browser = createBrowser();
    await signIn(rp, browser, { email: other.email, password });
    const { page } = await enrolPasskey(browser, server.issuer, newAuthenticator(), 'Copy', { credentialId: authenticator.credentials[0].id });
    expect(page.status).toBe(409);
    expect(textOf(page.html, '[role=alert]')).toBe('That passkey is already registered.');
    expect((await server.services.secondFactors.list(other.id)).factors).toEqual([]);
  });

  it('reports a signature counter that went backwards (audit event) and still signs the person in', async () => {
    const { user, authenticator } = await userWithPasskey();
    const signInWith = async (signCount: number) => {
      const { browser, page, options } = await loginPage();
      return submitPasskey(browser, page, authenticator.assert(options, { signCount }), redirectUri);
    };
    expect(isAtCallback(await signInWith(0))).toBe(true);
    expect(isAtCallback(await signInWith(0))).toBe(true);
    expect(await auditTypes(user.id)).not.toContain('mfa.passkey_counter_regressed');
    expect(isAtCallback(await signInWith(7))).toBe(true);
    expect(isAtCallback(await signInWith(3))).toBe(true);
    expect(await auditTypes(user.id)).toContain('mfa.passkey_counter_regressed');
  });

  it("says that a passkey was added in the reader's language", async () => {
    const user = await createUser(server.services);
    const browser = createBrowser({ headers: { 'accept-language': 'de' } });
    await signIn(rp, browser, { email: user.email, password });
    await enrolPasskey(browser, server.issuer, newAuthenticator());
    const second = await enrolPasskey(browser, server.issuer, newAuthenticator(), 'Telefon');
    expect(textOf(second.page.html, '[role=status]')).toBe('Der Passkey „Telefon“ wurde hinzugefügt.');
  });

  it('renames and removes a passkey (the password again), and lists it in the CLI view of factors', async () => {
    const { user, browser } = await userWithPasskey();
    let overview = await browser.follow(`${server.issuer}/account/security`);
    const [factor] = (await server.services.secondFactors.list(user.id)).factors;
    overview = await browser.submit(overview, `form[action="/account/security/passkeys/${factor.id}/rename"]`, { name: '  Phone\u0007 ' });
    expect(textOf(overview.html, '[role=status]')).toBe('The passkey was renamed.');
    expect((await server.services.secondFactors.list(user.id)).factors[0].label).toBe('Phone');
    const wrong = await browser.submit(overview, `form[action="/account/security/passkeys/${factor.id}/remove"]`, { password: 'not my password' });
    expect(wrong.status).toBe(400);
    const removed = await browser.submit(overview, `form[action="/account/security/passkeys/${factor.id}/remove"]`, { password });
    expect(textOf(removed.html, '[role=status]')).toBe('The passkey was removed.');
    expect(await server.services.secondFactors.list(user.id)).toEqual({ factors: [], recoveryCodesLeft: 0 });
  });

  it("refuses to rename or remove another account's passkey", async () => {
    const owner = await userWithPasskey();
    const [factor] = (await server.services.secondFactors.list(owner.user.id)).factors;
    const { browser } = await userWithPasskey();
    const overview = await browser.follow(`${server.issuer}/account/security`);
    const csrf = csrfOf(overview, 'form.passkey');
    for (const [id, action] of [[factor.id, 'rename'], [factor.id, 'remove'], ['%00', 'rename'], ['x%00y', 'remove']]) {
      const response = await browser.request(`${server.issuer}/account/security/passkeys/${id}/${action}`, {
        method: 'POST', body: new URLSearchParams({ csrf, name: 'mine now', password }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(response.status).toBe(404);
    }
    expect((await server.services.secondFactors.list(owner.user.id)).factors).toMatchObject([{ id: factor.id, label: 'Laptop' }]);
  });

  it('asks for the password before any enrolment challenge is issued', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    await signIn(rp, browser, { email: user.email, password });
    const overview = await browser.follow(`${server.issuer}/account/security`);
    const refused = await postForOptions(browser, `${server.issuer}/account/security/passkeys/options`, { csrf: csrfOf(overview, 'form.passkey'), password: 'wrong' });
    expect(refused).toEqual({ status: 400, json: { error: 'That password is not right.' } });
    const noCsrf = await postForOptions(browser, `${server.issuer}/account/security/passkeys/options`, { password });
    expect(noCsrf.status).toBe(400);
    // An answer made up without a challenge adds nothing.
    const made = newAuthenticator().register({ challenge: 'bm90LWlzc3VlZA', user: { id: 'eA', name: 'x', displayName: 'x' } } as never);
    const page = await browser.submit(overview, 'form.passkey', { response: JSON.stringify(made) });
    expect(page.status).toBe(400);
    expect((await server.services.secondFactors.list(user.id)).factors).toEqual([]);
  });

  it('refuses a passkey of a disabled account', async () => {
    const { user, authenticator } = await userWithPasskey();
    await server.services.accounts.disable(user.email);
    const { browser, page, options } = await loginPage();
    expect((await submitPasskey(browser, page, authenticator.assert(options), redirectUri)).status).toBe(400);
  });

  it('answers garbage in the answer field with a readable 400', async () => {
    for (const response of ['', 'null', '[]', '{"id":1}', '{"response":{"clientDataJSON":"!!"}}', 'x'.repeat(5000)]) {
      const { browser, page } = await loginPage();
      const answer = await browser.submit(page, 'form.passkey', { response }, redirectUri);
      expect(answer.status).toBe(400);
      expect(textOf(answer.html, 'h1')).toBeTruthy();
    }
  });
});
