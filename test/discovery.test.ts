import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rotateSigningKey } from '../src/signing-keys.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

describe('discovery', () => {
  it('advertises only the code flow, S256 PKCE and the JWKS at /.well-known/jwks.json', async () => {
    const response = await fetch(`${server.issuer}/.well-known/openid-configuration`);
    expect(response.status).toBe(200);
    const metadata = await response.json();
    expect(metadata).toMatchObject({
      issuer: server.issuer,
      jwks_uri: `${server.issuer}/.well-known/jwks.json`,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      id_token_signing_alg_values_supported: ['RS256'],
      introspection_endpoint: `${server.issuer}/token/introspection`,
      revocation_endpoint: `${server.issuer}/token/revocation`,
      end_session_endpoint: `${server.issuer}/session/end`,
      userinfo_endpoint: `${server.issuer}/me`,
    });
    expect(metadata.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token', 'client_credentials']));
    expect(metadata.grant_types_supported).not.toContain('password');
    expect(metadata.grant_types_supported).not.toContain('implicit');
    expect(metadata.scopes_supported).toEqual(expect.arrayContaining(['openid', 'email', 'profile', 'offline_access']));
  });
});

/** A conditional GET as a cache would send it (fetch() turns If-None-Match into a no-cache request). */
function conditionalGet(url: string, etag: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    http.get(url, { headers: { 'if-none-match': etag } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    }).on('error', reject);
  });
}

describe('discovery and JWKS served from cache', () => {
  for (const path of ['/.well-known/openid-configuration', '/.well-known/jwks.json']) {
    it(`answers ${path} with the same body every time, an ETag, cache headers and CORS for any origin`, async () => {
      const first = await fetch(`${server.issuer}${path}`);
      const firstBody = await first.text();
      const second = await fetch(`${server.issuer}${path}`, { headers: { origin: 'https://app.example' } });
      expect(second.status).toBe(200);
      expect(await second.text()).toBe(firstBody);
      expect(second.headers.get('content-type')).toBe(first.headers.get('content-type'));
      expect(second.headers.get('content-type')).toMatch(/json/);
      expect(second.headers.get('etag')).toBe(first.headers.get('etag'));
      expect(second.headers.get('cache-control')).toMatch(/^public, max-age=\d+$/);
      // `*`, not the Origin echoed: the same bytes for every caller, so the cache keyed by path alone is right.
      expect(second.headers.get('access-control-allow-origin')).toBe('*');
      expect(await conditionalGet(`${server.issuer}${path}`, first.headers.get('etag')!)).toBe(304);
      expect(await conditionalGet(`${server.issuer}${path}`, '"something-else"')).toBe(200);
    });
  }

  it('serves the new key set (and a new ETag) after a key rotation', async () => {
    const other = await startTestServer();
    try {
      const before = await fetch(`${other.issuer}/.well-known/jwks.json`);
      const { keys: oldKeys } = await before.json() as { keys: unknown[] };
      await rotateSigningKey(other.config.keysDir);
      expect(await other.reloadSigningKeys()).toBe(true);
      const after = await fetch(`${other.issuer}/.well-known/jwks.json`);
      const { keys } = await after.json() as { keys: unknown[] };
      expect(keys).toHaveLength(oldKeys.length + 1);
      expect(after.headers.get('etag')).not.toBe(before.headers.get('etag'));
    } finally {
      await other.close();
    }
  });
});

describe('key files created on first start', () => {
  it('writes the signing key and the cookie secrets readable by the service user only, in a private directory', async () => {
    // A server of its own on an empty KEYS_DIR: these files come from its first start, not from `latchkey keys rotate`.
    const fresh = await startTestServer();
    try {
      const { keysDir } = fresh.config;
      expect(fs.statSync(keysDir).mode & 0o777).toBe(0o700);
      const files = fs.readdirSync(keysDir).sort();
      // The temp files that make creation atomic are gone; only the two secrets are left.
      expect(files).toEqual(['cookie-secrets.json', 'signing-key-000001.json']);
      for (const file of files) expect(fs.statSync(path.join(keysDir, file)).mode & 0o777).toBe(0o600);
    } finally {
      await fresh.close();
    }
  });

  it('makes an existing keys directory that others could read private', async () => {
    // Like the `keys/` of a checkout: the directory exists before Latchkey first starts, with the usual 0755.
    const keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-keys-'));
    fs.chmodSync(keysDir, 0o755);
    const fresh = await startTestServer({ keysDir });
    try {
      expect(fs.statSync(keysDir).mode & 0o777).toBe(0o700);
    } finally {
      await fresh.close();
      fs.rmSync(keysDir, { recursive: true, force: true });
    }
  });
});

describe('health check and assets', () => {
  it('answers /healthz with 200 while the database answers', async () => {
    const response = await fetch(`${server.issuer}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('serves its own stylesheet with an ETag', async () => {
    const response = await fetch(`${server.issuer}/assets/latchkey.css`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/css');
    expect(await conditionalGet(`${server.issuer}/assets/latchkey.css`, response.headers.get('etag')!)).toBe(304);
  });

  it('answers the browser\'s favicon request with an empty 204, so no page logs a 404', async () => {
    const response = await fetch(`${server.issuer}/favicon.ico`);
    expect(response.status).toBe(204);
  });

  it('answers an unknown interaction with a readable error page, not a 500', async () => {
    const response = await fetch(`${server.issuer}/interaction/does-not-exist`);
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(await response.text()).toContain('Something went wrong');
  });
});

describe('health check without a database', () => {
  it('answers 503 when the database is gone', async () => {
    const other = await startTestServer();
    await other.services.close();
    const response = await fetch(`${other.issuer}/healthz`);
    expect(response.status).toBe(503);
    await other.close().catch(() => undefined);
  });
});
