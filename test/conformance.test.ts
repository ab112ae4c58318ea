import * as oidc from 'openid-client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createBrowser, textOf, type Browser } from './support/browser.js';
import { authorizeWith, redeem } from './support/conformance.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, redirectUri } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// The expectations of the OpenID Foundation's Basic OP and Config OP test plans (docs/conformance.md has the table
// of modules). Each `it` names the module whose expectation it checks.

let server: TestServer;
let rp: oidc.Configuration;
let metadata: Record<string, unknown>;

beforeAll(async () => {
  server = await startTestServer();
  const client = await createClient(server.services);
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
  metadata = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json();
});
afterAll(() => server.close());
afterEach(() => {
  vi.useRealTimers();
});

/** A user signed in at a browser that has allowed `scope`; the first ID token's claims. */
async function signedIn(scope = 'openid', extra: Record<string, string> = {}) {
  const user = await createUser(server.services);
  const browser = createBrowser();
  const flow = await authorizeWith(rp, browser, { scope, ...extra }, { email: user.email, password });
  const tokens = await redeem(rp, flow);
  return { user, browser, tokens, claims: tokens.claims()! };
}

function errorOf(url: URL) {
  return { error: url.searchParams.get('error'), state: url.searchParams.get('state'), iss: url.searchParams.get('iss') };
}

async function userinfoRequest(init: RequestInit & { url?: string }): Promise<Response> {
  return fetch(init.url ?? `${server.issuer}/me`, init);
}

describe('Basic OP: requests', () => {
  it('oidcc-alternate-happy-flow: the scope in another order and the parameters in another order', async () => {
    const user = await createUser(server.services);
    const flow = await authorizeWith(rp, createBrowser(), { scope: 'profile email openid', extra: '' }, { email: user.email, password });
    const tokens = await redeem(rp, flow);
    expect(tokens.claims()!.sub).toBe(user.id);
    expect(tokens.scope?.split(' ').sort()).toEqual(['email', 'openid', 'profile']);
  });

  it('oidcc-response-type-missing: an authorization request without response_type is sent back with an error', async () => {
    const url = oidc.buildAuthorizationUrl(rp, { redirect_uri: redirectUri, scope: 'openid', state: 's1', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
    url.searchParams.delete('response_type');
    const page = await createBrowser().follow(url.href, {}, redirectUri);
    expect(errorOf(new URL(page.url))).toMatchObject({ error: 'invalid_request', state: 's1' });
  });

  it('oidcc-ensure-request-without-nonce-succeeds-for-code-flow', async () => {
    const user = await createUser(server.services);
    const flow = await authorizeWith(rp, createBrowser(), { nonce: '' }, { email: user.email, password });
    expect((await redeem(rp, flow)).claims()!.nonce).toBeUndefined();
  });

  it('oidcc-ensure-request-with-unknown-parameter-succeeds, oidcc-display-page, oidcc-display-popup, oidcc-ui-locales, oidcc-claims-locales', async () => {
    const extras: Array<Record<string, string>> = [{ extra: 'foobar' }, { display: 'page' }, { display: 'popup' }, { ui_locales: 'se' }, { claims_locales: 'se' }];
    for (const extra of extras) {
      const user = await createUser(server.services);
      const flow = await authorizeWith(rp, createBrowser(), extra, { email: user.email, password });
      expect(flow.loginShown, JSON.stringify(extra)).toBe(true);
      expect((await redeem(rp, flow)).claims()!.sub).toBe(user.id);
    }
  });

  it('oidcc-login-hint: the login page is shown with the hinted email filled in', async () => {
    const user = await createUser(server.services);
    const flow = await authorizeWith(rp, createBrowser(), { login_hint: user.email }, { email: user.email, password });
    expect(flow.pages[0]!.html).toContain(`value="${user.email}"`);
    expect((await redeem(rp, flow)).claims()!.sub).toBe(user.id);
  });

  it('oidcc-ensure-request-with-valid-pkce-succeeds (and every other module: Latchkey requires PKCE)', async () => {
    const { claims } = await signedIn();
    expect(claims.sub).toBeTruthy();
  });
});

describe('Basic OP: prompt, max_age, id_token_hint', () => {
  it('oidcc-prompt-none-not-logged-in: login_required, sent to the app with state and iss', async () => {
    const flow = await authorizeWith(rp, createBrowser(), { prompt: 'none', state: 'quiet' });
    expect(flow.callbackUrl.href.startsWith(redirectUri)).toBe(true);
    expect(errorOf(flow.callbackUrl)).toEqual({ error: 'login_required', state: 'quiet', iss: server.issuer });
  });

  it('oidcc-prompt-none-logged-in: a code without any page, for the same sub', async () => {
    const { browser, claims } = await signedIn();
    const flow = await authorizeWith(rp, browser, { prompt: 'none' });
    expect(flow.pages).toEqual([]);
    expect((await redeem(rp, flow)).claims()!.sub).toBe(claims.sub);
  });

  it('oidcc-prompt-login: the signed-in person is asked for the password again', async () => {
    const { user, browser, claims } = await signedIn();
    const flow = await authorizeWith(rp, browser, { prompt: 'login' }, { email: user.email, password });
    expect(flow.loginShown).toBe(true);
    const again = (await redeem(rp, flow)).claims()!;
    expect(again.sub).toBe(claims.sub);
    expect(again.auth_time).toBeGreaterThanOrEqual(claims.auth_time ?? 0);
  });

  it('oidcc-max-age-1: a sign-in older than max_age asks for the password and the ID token carries the new auth_time', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const { user, browser } = await signedIn();
    const signedInAt = Math.floor(Date.now() / 1000);
    vi.setSystemTime(Date.now() + 2000);
    const flow = await authorizeWith(rp, browser, { max_age: '1' }, { email: user.email, password });
    expect(flow.loginShown).toBe(true);
    const claims = (await redeem(rp, flow, { maxAge: 1 })).claims()!;
    expect(claims.auth_time).toBeGreaterThan(signedInAt);
  });

  it('oidcc-max-age-10000: a recent enough sign-in is not asked again, and auth_time stays that of the sign-in', async () => {
    const { browser, claims } = await signedIn('openid', { max_age: '15000' });
    expect(claims.auth_time).toEqual(expect.any(Number));
    const flow = await authorizeWith(rp, browser, { max_age: '10000' });
    expect(flow.pages).toEqual([]);
    const again = (await redeem(rp, flow, { maxAge: 10000 })).claims()!;
    expect(again).toMatchObject({ sub: claims.sub, auth_time: claims.auth_time });
  });

  it('oidcc-id-token-hint: prompt=none with the previous ID token as hint answers at once', async () => {
    const { browser, tokens, claims } = await signedIn();
    const flow = await authorizeWith(rp, browser, { prompt: 'none', id_token_hint: tokens.id_token! });
    expect(flow.pages).toEqual([]);
    expect((await redeem(rp, flow)).claims()!.sub).toBe(claims.sub);
  });

  it('id_token_hint naming another person than the signed-in one is never answered silently (login_required)', async () => {
    const other = await signedIn();
    const { browser } = await signedIn();
    const flow = await authorizeWith(rp, browser, { prompt: 'none', id_token_hint: other.tokens.id_token! });
    expect(errorOf(flow.callbackUrl).error).toBe('login_required');
  });

  it('prompt=select_account (no module): the signed-in person is offered to continue, and does so without a password (test/select-account.test.ts has the rest)', async () => {
    const { user, browser, claims } = await signedIn();
    const flow = await authorizeWith(rp, browser, { prompt: 'select_account', state: 'pick' });
    expect(flow.page.url).toContain('/interaction/');
    expect(textOf(flow.page.html, 'form[action$="/select-account/continue"] button')).toBe(`Continue as ${user.email}`);
    const callback = await browser.submit(flow.page, 'form[action$="/select-account/continue"]', {}, redirectUri);
    const tokens = await redeem(rp, { ...flow, callbackUrl: new URL(callback.url) });
    expect(tokens.claims()!.sub).toBe(claims.sub);
  });
});

describe('Basic OP: POST to the authorization endpoint (oidcc-ensure-post-request-succeeds)', () => {
  async function postAuthorization(browser: Browser, body: Record<string, string>, query = '') {
    const verifier = oidc.randomPKCECodeVerifier();
    const parameters = new URLSearchParams({
      client_id: rp.clientMetadata().client_id, response_type: 'code', redirect_uri: redirectUri, scope: 'openid', state: 'posted',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...body,
    });
    const response = await browser.request(`${server.issuer}/auth${query}`, {
      method: 'POST', body: parameters, headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    return { response, verifier };
  }

  it('a form-encoded POST is sent on as a GET of the same request, and the sign-in completes', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    const { response, verifier } = await postAuthorization(browser, {});
    expect(response.status).toBe(303);
    const location = new URL(response.headers.get('location')!, `${server.issuer}/auth`);
    expect(location.pathname).toBe('/auth');
    expect(location.searchParams.get('state')).toBe('posted');
    const login = await browser.follow(location.href, {}, redirectUri);
    const consent = await browser.submit(login, 'form[action$="/login"]', { email: user.email, password }, redirectUri);
    const callback = await browser.submit(consent, 'form[action$="/confirm"]', {}, redirectUri);
    const tokens = await oidc.authorizationCodeGrant(rp, new URL(callback.url), { pkceCodeVerifier: verifier, expectedState: 'posted' });
    expect(tokens.claims()!.sub).toBe(user.id);
  });

  it('a signed-in person who POSTs is not asked to sign in again (the GET carries the SameSite=Lax session cookie)', async () => {
    const { browser, claims } = await signedIn();
    const { response } = await postAuthorization(browser, { prompt: 'none' });
    const callback = await browser.follow(new URL(response.headers.get('location')!, `${server.issuer}/auth`).href, {}, redirectUri);
    expect(new URL(callback.url).searchParams.get('code')).toBeTruthy();
    expect(claims.sub).toBeTruthy();
  });

  it('refuses parameters in the query and the body at once, and a body that is not form-encoded', async () => {
    const both = await postAuthorization(createBrowser(), {}, '?scope=openid%20email');
    expect(both.response.status).toBe(400);
    const json = await createBrowser().request(`${server.issuer}/auth`, {
      method: 'POST', body: JSON.stringify({ client_id: 'x' }), headers: { 'content-type': 'application/json', accept: 'application/json' },
    });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({ error: 'invalid_request' });
  });
});

describe('Basic OP: request objects are refused as the modules allow', () => {
  it('oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported: request_not_supported', async () => {
    const request = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ scope: 'openid' })).toString('base64url')}.`;
    const flow = await authorizeWith(rp, createBrowser(), { request, state: 'ro' });
    expect(errorOf(flow.callbackUrl)).toMatchObject({ error: 'request_not_supported', state: 'ro' });
  });

  it('oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported: request_uri_not_supported', async () => {
    const flow = await authorizeWith(rp, createBrowser(), { request_uri: 'https://rp.example/request.jwt', state: 'ru' });
    expect(errorOf(flow.callbackUrl)).toMatchObject({ error: 'request_uri_not_supported', state: 'ru' });
  });
});

describe('Basic OP: claims', () => {
  it('oidcc-scope-profile: the profile scope releases the name, locale, zoneinfo and updated_at the account holds', async () => {
    const user = await server.services.accounts.create({
      email: `profile-${Date.now()}@example.com`, password, givenName: 'Ada', familyName: 'Lovelace', locale: 'en-gb', zoneinfo: 'europe/london',
    });
    const flow = await authorizeWith(rp, createBrowser(), { scope: 'openid profile' }, { email: user.email, password });
    const tokens = await redeem(rp, flow);
    const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, user.id);
    expect(userinfo).toEqual({
      sub: user.id, given_name: 'Ada', family_name: 'Lovelace', name: 'Ada Lovelace', locale: 'en-GB', zoneinfo: 'Europe/London',
      updated_at: Math.floor(user.updatedAt / 1000),
    });
  });

  it('oidcc-scope-address, oidcc-scope-phone, oidcc-scope-all: address and phone are not offered; asking for them is no error', async () => {
    expect(metadata.scopes_supported).not.toContain('address');
    expect(metadata.scopes_supported).not.toContain('phone');
    const { user, tokens } = await signedIn('openid email profile address phone');
    expect(tokens.scope?.split(' ').sort()).toEqual(['email', 'openid', 'profile']);
    const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, user.id);
    expect(userinfo.email).toBe(user.email);
    expect(userinfo.address).toBeUndefined();
    expect(userinfo.phone_number).toBeUndefined();
  });

  it('oidcc-claims-essential: name asked for as essential in userinfo is released after consent', async () => {
    const claims = JSON.stringify({ userinfo: { name: { essential: true } } });
    const user = await createUser(server.services);
    const flow = await authorizeWith(rp, createBrowser(), { claims }, { email: user.email, password });
    const consent = flow.pages.find((page) => page.html.includes('/confirm'));
    expect(textOf(consent!.html, 'ul.scopes')).toContain('See your name');
    const tokens = await redeem(rp, flow);
    const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, user.id);
    expect(userinfo).toMatchObject({ sub: user.id, name: 'Ada Lovelace' });
    expect(userinfo.email).toBeUndefined();
  });

  it('a claim asked for by name with only the openid scope is named on the consent page, and denied without Allow', async () => {
    const user = await createUser(server.services);
    const browser = createBrowser();
    const claims = JSON.stringify({ userinfo: { email: null }, id_token: { email: { essential: true } } });
    const start = await authorizeWith(rp, browser, { claims, scope: 'openid' });
    const login = start.pages[0]!;
    const consent = await browser.submit(login, 'form[action$="/login"]', { email: user.email, password }, redirectUri);
    expect(textOf(consent.html, 'ul.scopes')).toContain('See your email address');
    const denied = await browser.submit(consent, 'form[action$="/abort"]', {}, redirectUri);
    expect(new URL(denied.url).searchParams.get('error')).toBe('access_denied');
  });

  it('oidcc-ensure-request-with-acr-values-succeeds: the ID token carries one of the advertised acr values asked for', async () => {
    const advertised = metadata.acr_values_supported as string[] | undefined;
    expect(advertised?.length).toBeGreaterThan(0);
    const { claims } = await signedIn('openid', { acr_values: advertised!.join(' ') });
    expect(advertised).toContain(claims.acr);
  });
});

describe('Basic OP: ID token and userinfo', () => {
  it('oidcc-idtoken-signature: RS256 with a kid found in the JWKS; oidcc-idtoken-unsigned: alg none is never offered', async () => {
    const { tokens } = await signedIn();
    const header = JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString());
    const jwks = await (await fetch(metadata.jwks_uri as string)).json() as { keys: Array<{ kid: string }> };
    expect(header.alg).toBe('RS256');
    expect(jwks.keys.map((key) => key.kid)).toContain(header.kid);
    expect(metadata.id_token_signing_alg_values_supported).toEqual(['RS256']);
  });

  it('oidcc-userinfo-get, oidcc-userinfo-post-header, oidcc-userinfo-post-body: the same claims all three ways', async () => {
    const { user, tokens } = await signedIn('openid email');
    const token = tokens.access_token;
    const expected = { sub: user.id, email: user.email, email_verified: true };
    const get = await userinfoRequest({ headers: { authorization: `Bearer ${token}` } });
    const postHeader = await userinfoRequest({ method: 'POST', headers: { authorization: `Bearer ${token}` } });
    const postBody = await userinfoRequest({
      method: 'POST', body: new URLSearchParams({ access_token: token }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    for (const response of [get, postHeader, postBody]) {
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual(expected);
    }
  });

  it('oidcc-codereuse-30seconds: a code redeemed again after 30 seconds is refused and its tokens are revoked', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const user = await createUser(server.services);
    const flow = await authorizeWith(rp, createBrowser(), {}, { email: user.email, password });
    const tokens = await redeem(rp, flow);
    vi.setSystemTime(Date.now() + 31_000);
    await expect(redeem(rp, flow)).rejects.toMatchObject({ error: 'invalid_grant' });
    const userinfo = await userinfoRequest({ headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(userinfo.status).toBe(401);
  });
});

describe('Config OP: oidcc-discovery-endpoint-verification', () => {
  it('is complete and consistent: issuer, endpoints under it, what the provider does and nothing it does not', async () => {
    const issuer = server.issuer;
    expect(metadata).toMatchObject({
      issuer,
      authorization_endpoint: `${issuer}/auth`,
      token_endpoint: `${issuer}/token`,
      userinfo_endpoint: `${issuer}/me`,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      end_session_endpoint: `${issuer}/session/end`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      code_challenge_methods_supported: ['S256'],
      claims_parameter_supported: true,
      request_uri_parameter_supported: false,
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
    });
    expect(metadata.scopes_supported).toContain('openid');
    expect(metadata.claims_supported).toEqual(expect.arrayContaining([
      'sub', 'email', 'email_verified', 'name', 'given_name', 'family_name', 'locale', 'zoneinfo', 'updated_at',
    ]));
    expect(metadata.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'client_secret_post']));
    expect(metadata.response_modes_supported).toEqual(expect.arrayContaining(['query']));
    expect(metadata.request_parameter_supported ?? false).toBe(false);
    expect(metadata.request_object_signing_alg_values_supported).toBeUndefined();
    expect(metadata.registration_endpoint).toBeUndefined();
  });
});
