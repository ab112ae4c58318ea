import fs from 'node:fs';
import path from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { connectionSecretKeyFile, createConnectionSecretBox } from '../src/federation/secret-box.js';
import { createBrowser } from './support/browser.js';
import { runCliCapturing } from './support/cli.js';
import { createClient } from './support/fixtures.js';
import { discoverRp, redirectUri } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';
import { startUpstreamProvider, type UpstreamProvider } from './support/upstream-provider.js';

let server: TestServer;
let upstream: UpstreamProvider;
let env: Record<string, string>;
const secret = 'upstream-client-secret-do-not-print';

beforeAll(async () => {
  [server, upstream] = await Promise.all([startTestServer(), startUpstreamProvider()]);
  env = { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir, ISSUER: server.issuer };
});
afterAll(async () => {
  await server?.close();
  await upstream?.close();
});

const cli = (args: string[], stdin?: string) => runCliCapturing(args, env, undefined, stdin);

async function loginPageHtml(): Promise<string> {
  const app = await createClient(server.services, { skipConsent: true });
  const rp = await discoverRp(server.issuer, app.clientId, app.clientSecret!);
  const url = oidc.buildAuthorizationUrl(rp, { redirect_uri: redirectUri, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
  return (await createBrowser().follow(url.href)).html;
}

describe('latchkey connections', () => {
  it('creates a connection after reading the discovery document and prints the redirect URI to register', async () => {
    const created = await cli(['connections', 'create', '--id', 'acme', '--issuer', upstream.issuer, '--client-id', 'lk', '--client-secret-stdin',
      '--name', 'Acme SSO', '--email-domains', 'Acme.com, acme.org', '--link-by-email', 'never', '--create-users', 'false'], `${secret}\n`);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toContain(`register this redirect URI at the upstream provider: ${server.issuer}/connections/acme/callback`);
    expect(created.stdout).not.toContain(secret);

    const listed = await cli(['connections', 'list', '--json']);
    expect(listed.stdout).not.toContain(secret);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({
      id: 'acme', name: 'Acme SSO', issuer: upstream.issuer, clientId: 'lk', hasClientSecret: true, scopes: ['openid', 'email', 'profile'],
      createUsers: false, linkByEmail: 'never', emailDomains: ['acme.com', 'acme.org'], redirectUri: `${server.issuer}/connections/acme/callback`,
    })]);
    expect((await cli(['connections', 'list'])).stdout).toMatch(/acme\s+Acme SSO/);
  });

  it('keeps the client secret encrypted: not in the database, under a 0600 key in KEYS_DIR, bound to its connection', async () => {
    const rows = await server.database('connections').where({ id: 'acme' });
    expect(JSON.stringify(rows)).not.toContain(secret);
    const sealed = rows[0].client_secret_encrypted as string;
    expect(sealed).toMatch(/^v1\./);
    const keyFile = path.join(server.config.keysDir, connectionSecretKeyFile);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const box = createConnectionSecretBox(server.config.keysDir);
    expect(box.open('acme', sealed)).toBe(secret);
    // Copied onto another connection's row, the ciphertext does not decrypt; nor under another key.
    expect(() => box.open('other', sealed)).toThrow(/does not decrypt/);
    const otherDir = fs.mkdtempSync(path.join(server.dir, 'other-keys-'));
    expect(() => createConnectionSecretBox(otherDir).open('acme', sealed)).toThrow(/does not decrypt/);
    // Each sealing is fresh (random IV): the same secret twice gives two ciphertexts.
    expect(box.seal('acme', secret)).not.toBe(box.seal('acme', secret));
  });

  it('shows a new connection on the login page of a running server, and hides a deleted one, without a restart', async () => {
    expect(await loginPageHtml()).toContain('Continue with Acme SSO');
    const deleted = await cli(['connections', 'delete', '--id', 'acme']);
    expect(deleted).toMatchObject({ code: 0, stdout: 'deleted connection acme and every identity linked through it (the users stay)' });
    expect(await loginPageHtml()).not.toContain('Continue with Acme SSO');
    const events = await server.services.auditEvents.list({ limit: 10 });
    expect(events.map((event) => event.type)).toEqual(expect.arrayContaining(['connection.created', 'connection.deleted']));
    expect(JSON.stringify(events)).not.toContain(secret);
  });

  it('refuses what it cannot use with one line and exit code 1', async () => {
    const base = ['connections', 'create', '--client-id', 'lk', '--name', 'X'];
    const cases: Array<[string[], RegExp]> = [
      [[...base, '--id', 'down', '--issuer', 'http://localhost:1'], /^latchkey: could not read the OpenID Connect discovery document of http:\/\/localhost:1: /],
      [[...base, '--id', 'not-oidc', '--issuer', `${upstream.issuer}/nothing-here`], /^latchkey: could not read the OpenID Connect discovery document/],
      [[...base, '--id', 'plain', '--issuer', 'http://idp.example.com'], /^latchkey: issuer "http:\/\/idp.example.com" must use https/],
      [[...base, '--id', 'Bad Id', '--issuer', upstream.issuer], /^latchkey: connection id "Bad Id" must be/],
      [[...base, '--id', 'noopenid', '--issuer', upstream.issuer, '--scopes', 'email profile'], /^latchkey: --scopes must include openid$/],
      [[...base, '--id', 'domains', '--issuer', upstream.issuer, '--email-domains', 'not a domain'], /^latchkey: "not a domain" is not a domain name/],
      [[...base, '--id', 'link', '--issuer', upstream.issuer, '--link-by-email', 'always'], /^latchkey: --link-by-email must be verified or never$/],
      [['connections', 'delete', '--id', 'missing'], /^latchkey: no connection with id missing$/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(args);
      expect(result.code, args.join(' ')).toBe(1);
      expect(result.stderr.split('\n'), args.join(' ')).toHaveLength(1);
      expect(result.stderr).toMatch(message);
    }
    const twice = ['connections', 'create', '--id', 'twice', '--issuer', upstream.issuer, '--client-id', 'lk', '--name', 'Twice'];
    expect((await cli(twice)).code).toBe(0);
    expect(await cli(twice)).toMatchObject({ code: 1, stderr: 'latchkey: a connection with id twice already exists' });
    expect(JSON.parse((await cli(['connections', 'list', '--json'])).stdout).find((c: { id: string }) => c.id === 'twice').hasClientSecret).toBe(false);
  });
});

describe('federation settings', () => {
  it('reads UPSTREAM_TIMEOUT and UPSTREAM_METADATA_TTL with safe defaults and refuses bad values', () => {
    expect(loadConfig({})).toMatchObject({ upstreamTimeoutSeconds: 10, upstreamMetadataTtlSeconds: 3600 });
    expect(loadConfig({ UPSTREAM_TIMEOUT: '3', UPSTREAM_METADATA_TTL: '600' })).toMatchObject({ upstreamTimeoutSeconds: 3, upstreamMetadataTtlSeconds: 600 });
    expect(() => loadConfig({ UPSTREAM_TIMEOUT: '0', UPSTREAM_METADATA_TTL: 'forever' })).toThrow(/UPSTREAM_TIMEOUT.*UPSTREAM_METADATA_TTL/);
  });
});
