import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser } from './support/browser.js';
import { runCliCapturing } from './support/cli.js';
import { createUser, password } from './support/fixtures.js';
import { authorize, discoverRp } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// RFC 8252: a native app receives the authorization response on the loopback interface, on a port it picks when it
// runs (§7.3: the authorization server must allow any port), or at a private-use scheme (§7.1). A web client's
// redirect URIs match exactly (RFC 9700 §2.1), loopback ones too.

let server: TestServer;
let email: string;
const cli = (...argv: string[]) => runCliCapturing([...argv, '--json'], { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir });

async function create(...argv: string[]) {
  const result = await cli('clients', 'create', ...argv);
  expect(result.stderr).toBe('');
  return JSON.parse(result.stdout);
}

beforeAll(async () => {
  server = await startTestServer();
  email = (await createUser(server.services)).email;
});
afterAll(() => server?.close());

/** Signs in with `redirectUri` and redeems the code; returns the token response. */
async function signInAt(clientId: string, redirectUri: string) {
  const rp = await discoverRp(server.issuer, clientId);
  const flow = await authorize(rp, createBrowser(), { email, password, redirectUri, scope: 'openid', consent: true });
  expect(flow.page.url.startsWith(redirectUri), `${flow.page.url} ${flow.page.html.slice(0, 300)}`).toBe(true);
  return oidc.authorizationCodeGrant(rp, flow.callbackUrl, {
    pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce, idTokenExpected: true,
  });
}

describe('native apps (RFC 8252)', () => {
  it('lets a native public client use its loopback redirect URIs on any port, IPv4 and IPv6', async () => {
    const client = await create('--client-id', 'desktop-app', '--public', '--application-type', 'native',
      '--redirect-uri', 'http://127.0.0.1/callback', '--redirect-uri', 'http://[::1]/callback');
    expect(client).toMatchObject({ applicationType: 'native', isPublic: true });
    for (const uri of ['http://127.0.0.1:51234/callback', 'http://127.0.0.1/callback', 'http://[::1]:60999/callback']) {
      const tokens = await signInAt('desktop-app', uri);
      expect(tokens.claims()?.aud).toBe('desktop-app');
    }
  });

  it('still matches a native app\'s loopback URI on everything but the port', async () => {
    const rp = await discoverRp(server.issuer, 'desktop-app');
    for (const uri of ['http://127.0.0.1:51234/other', 'http://localhost:51234/callback', 'http://127.0.0.1:51234/callback/x']) {
      const flow = await authorize(rp, createBrowser(), { email, password, redirectUri: uri, scope: 'openid' });
      // RFC 6749 §4.1.2.1: an unregistered redirect URI is shown an error, never redirected to.
      expect(flow.page.status).toBe(400);
      expect(flow.page.html).toContain('redirect_uri');
    }
  });

  it('lets a native app use a reverse-domain private-use scheme', async () => {
    await create('--client-id', 'mobile-app', '--public', '--application-type', 'native', '--redirect-uri', 'com.example.app:/oauth2redirect');
    const tokens = await signInAt('mobile-app', 'com.example.app:/oauth2redirect');
    expect(tokens.access_token).toBeTruthy();
  });

  it('keeps exact matching for a web client, loopback URIs included: another port is refused', async () => {
    await create('--client-id', 'web-on-loopback', '--public', '--redirect-uri', 'http://127.0.0.1:8765/callback');
    expect((await signInAt('web-on-loopback', 'http://127.0.0.1:8765/callback')).access_token).toBeTruthy();
    const rp = await discoverRp(server.issuer, 'web-on-loopback');
    const flow = await authorize(rp, createBrowser(), { email, password, redirectUri: 'http://127.0.0.1:9999/callback', scope: 'openid' });
    expect(flow.page.status).toBe(400);
    expect(flow.page.url.startsWith(`${server.issuer}/auth?`)).toBe(true);
    expect(flow.page.html).toContain('redirect_uri');
  });

  it('refuses a private-use scheme for a web client, an https loopback URI for a native one, and unknown types', async () => {
    const refusals: [string[], string][] = [
      [['--client-id', 'web-scheme', '--public', '--redirect-uri', 'com.example.app:/cb'], 'only a native app'],
      [['--client-id', 'native-https-loopback', '--public', '--application-type', 'native', '--redirect-uri', 'https://127.0.0.1/cb'], 'https on a loopback host'],
      [['--client-id', 'native-http', '--public', '--application-type', 'native', '--redirect-uri', 'http://example.com/cb'], 'allowed only for localhost'],
      [['--client-id', 'tv-app', '--public', '--application-type', 'tv', '--redirect-uri', 'http://127.0.0.1/cb'], 'application type must be web or native'],
      [['--client-id', 'native-origin', '--public', '--application-type', 'native', '--redirect-uri', 'http://127.0.0.1/cb', '--web-origin', 'https://app.example.com'], 'web origins are for browser apps'],
    ];
    for (const [argv, message] of refusals) {
      const result = await cli('clients', 'create', ...argv);
      expect(result).toMatchObject({ code: 1, stderr: expect.stringContaining(message) });
    }
    expect(await server.services.clients.find('web-scheme')).toBeUndefined();
  });

  it('publishes the client as native to oidc-provider and says so in clients list', async () => {
    const listed = JSON.parse((await cli('clients', 'list')).stdout) as { clientId: string; applicationType: string }[];
    expect(listed.find((client) => client.clientId === 'desktop-app')?.applicationType).toBe('native');
    expect(listed.find((client) => client.clientId === 'web-on-loopback')?.applicationType).toBe('web');
  });
});
