import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../support/fixtures.js';
import { discoverRp } from '../support/rp.js';
import { startTestServer, type TestServer } from '../support/server.js';

const run = promisify(execFile);
const python = '/usr/bin/python3';
const check = path.resolve('test/interop/simplejwt_check.py');
const audience = 'https://api.example.test';

/** Debian ships Django REST Framework and SimpleJWT; install them when this machine does not have them yet. */
function ensureSimpleJwt() {
  try {
    execFileSync(python, ['-c', 'import rest_framework_simplejwt']);
  } catch {
    execFileSync('apt-get', ['update'], { stdio: 'ignore' });
    execFileSync('apt-get', ['install', '-y', 'python3-djangorestframework-simplejwt'], {
      stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
}

let server: TestServer;
let service: oidc.Configuration;

beforeAll(async () => {
  ensureSimpleJwt();
  server = await startTestServer();
  await server.services.apis.register(audience, ['read']);
  const client = await createClient(server.services, { grantTypes: ['client_credentials'], redirectUris: [], apis: [{ audience, scopes: ['read'] }] });
  service = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
}, 600_000);
afterAll(() => server?.close());

async function simpleJwt(issuer: string, expectedAudience: string, token: string, boundToken?: string) {
  const { stdout } = await run(python, [check, issuer, expectedAudience, token, ...(boundToken ? [boundToken] : [])]);
  return stdout.trim().split('\n').map((line) => JSON.parse(line) as { case: string; status: number; body: Record<string, unknown> });
}

describe('Django REST Framework with SimpleJWT, configured as docs/apps.md says', () => {
  it('accepts a Latchkey JWT access token and refuses tampered and missing ones', async () => {
    const { access_token: token } = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read' });
    const results = await simpleJwt(server.issuer, audience, token);
    expect(results).toEqual([
      { case: 'valid', status: 200, body: { sub: service.clientMetadata().client_id, scope: 'read' } },
      expect.objectContaining({ case: 'tampered', status: 401 }),
      expect.objectContaining({ case: 'missing', status: 401 }),
    ]);
  });

  it('refuses a DPoP-bound token sent as a bearer token (it cannot check the proof), and accepts the unbound one', async () => {
    const { access_token: token } = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read' });
    const dpop = oidc.getDPoPHandle(service, await oidc.randomDPoPKeyPair());
    const { access_token: bound } = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read' }, { DPoP: dpop });
    const results = await simpleJwt(server.issuer, audience, token, bound);
    expect(results[0]).toMatchObject({ case: 'valid', status: 200 });
    expect(results[3]).toEqual({ case: 'dpop-bound', status: 401, body: { detail: 'the access token is sender-constrained' } });
  });

  it('refuses a token for another audience', async () => {
    const { access_token: token } = await oidc.clientCredentialsGrant(service, { resource: audience, scope: 'read' });
    const [valid] = await simpleJwt(server.issuer, 'https://other.example.test', token);
    expect(valid).toMatchObject({ case: 'valid', status: 401 });
  });
});
