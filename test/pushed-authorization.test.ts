import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, redirectUri } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// RFC 9126: pushed authorization requests are on for every client; a client registered with --require-par
// (require_pushed_authorization_requests, §6) may start a sign-in only with a request_uri it pushed itself.

let server: TestServer;
let email: string;
let parClient: { clientId: string; clientSecret: string };

beforeAll(async () => {
  server = await startTestServer();
  email = (await createUser(server.services)).email;
  const registered = await createClient(server.services, { requirePar: true, skipConsent: true });
  parClient = { clientId: registered.clientId, clientSecret: registered.clientSecret! };
});
afterAll(() => server?.close());

function authorizationParameters(codeVerifier: string) {
  return oidc.calculatePKCECodeChallenge(codeVerifier).then((challenge) => ({
    redirect_uri: redirectUri, scope: 'openid email', code_challenge: challenge, code_challenge_method: 'S256', state: oidc.randomState(),
  }));
}

describe('pushed authorization requests', () => {
  it('advertises the PAR endpoint and that PAR is not required of every client', async () => {
    const discovery = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json() as Record<string, unknown>;
    expect(discovery.pushed_authorization_request_endpoint).toBe(`${server.issuer}/request`);
    // RFC 9126 §5: absent means false.
    expect(discovery.require_pushed_authorization_requests ?? false).toBe(false);
  });

  it('refuses a plain authorization request of a --require-par client', async () => {
    const rp = await discoverRp(server.issuer, parClient.clientId, parClient.clientSecret);
    const url = oidc.buildAuthorizationUrl(rp, await authorizationParameters(oidc.randomPKCECodeVerifier()));
    const page = await createBrowser().follow(url.href, {}, redirectUri);
    const error = page.url.startsWith(redirectUri) ? Object.fromEntries(new URL(page.url).searchParams) : { html: page.html };
    expect(error).toMatchObject({ error: 'invalid_request', error_description: 'Pushed Authorization Request must be used' });
  });

  it('signs the same client in through PAR', async () => {
    const rp = await discoverRp(server.issuer, parClient.clientId, parClient.clientSecret);
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const parameters = await authorizationParameters(codeVerifier);
    const url = await oidc.buildAuthorizationUrlWithPAR(rp, parameters);
    expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    const browser = createBrowser();
    let page = await browser.follow(url.href, {}, redirectUri);
    page = await browser.submit(page, 'form[action$="/login"]', { email, password }, redirectUri);
    expect(page.url.startsWith(redirectUri)).toBe(true);
    const tokens = await oidc.authorizationCodeGrant(rp, new URL(page.url), { pkceCodeVerifier: codeVerifier, expectedState: parameters.state });
    expect(tokens.claims()?.sub).toBe((await server.services.accounts.findByEmail(email))?.id);
  });

  it('refuses a request_uri pushed by another client', async () => {
    const other = await createClient(server.services, { skipConsent: true });
    const otherRp = await discoverRp(server.issuer, other.clientId, other.clientSecret!);
    const pushed = await oidc.buildAuthorizationUrlWithPAR(otherRp, await authorizationParameters(oidc.randomPKCECodeVerifier()));
    const stolen = new URL(`${server.issuer}/auth`);
    stolen.search = new URLSearchParams({ client_id: parClient.clientId, request_uri: pushed.searchParams.get('request_uri')! }).toString();
    const page = await createBrowser().follow(stolen.href, {}, redirectUri);
    expect(page.url.startsWith(redirectUri) ? new URL(page.url).searchParams.get('error') : page.status).not.toBeNull();
    expect(page.url).not.toContain('code=');
  });
});
