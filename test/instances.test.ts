import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openServices } from '../src/services.js';
import { rotateSigningKey } from '../src/signing-keys.js';
import { startBalancer } from './support/balancer.js';
import { createBrowser } from './support/browser.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { spawnLatchkey, type LatchkeyProcess } from './support/process.js';
import { sendHttp } from './support/raw-http.js';
import { authorize, discoverRp, signIn } from './support/rp.js';

const audience = 'https://api.example.test';
let dir: string;
let database: TestDatabase;
let balancer: Awaited<ReturnType<typeof startBalancer>>;
let instances: LatchkeyProcess[];
let env: Record<string, string>;
let rp: oidc.Configuration;
let service: oidc.Configuration;
let email: string;

/** Waits for a condition another process brings about (bounded; no fixed sleeps). */
async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-instances-'));
  database = await createTestDatabase(dir);
  balancer = await startBalancer();
  env = {
    ISSUER: `http://localhost:${balancer.port}`,
    DATABASE_URL: database.url,
    KEYS_DIR: path.join(dir, 'keys'),
    KEYS_RELOAD_INTERVAL: '1',
    KEYS_ACTIVATION_DELAY: '2',
  };
  const services = await openServices(loadConfig(env));
  const client = await createClient(services);
  await services.apis.register(audience, ['read']);
  const serviceClient = await createClient(services, { grantTypes: ['client_credentials'], redirectUris: [], apis: [{ audience, scopes: ['read'] }] });
  email = (await createUser(services)).email;
  await services.close();

  instances = [await spawnLatchkey(env), await spawnLatchkey(env)];
  balancer.setBackends(instances.map((instance) => instance.port));
  rp = await discoverRp(env.ISSUER, client.clientId, client.clientSecret!);
  service = await discoverRp(env.ISSUER, serviceClient.clientId, serviceClient.clientSecret!);
}, 60_000);

afterAll(async () => {
  for (const instance of instances ?? []) instance.child.kill('SIGTERM');
  await Promise.all((instances ?? []).map((instance) => instance.exited));
  await balancer?.close();
  await database?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('two Latchkey processes sharing one database and keys directory', () => {
  it('signs in at A, redeems the code at B, and gives SSO at B without a password', async () => {
    const browser = createBrowser();
    balancer.route(0);
    const flow = await authorize(rp, browser, { email, password, consent: true });
    balancer.route(1);
    const tokens = await oidc.authorizationCodeGrant(rp, flow.callbackUrl, {
      pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce,
    });
    expect(tokens.claims()!.iss).toBe(env.ISSUER);
    const again = await signIn(rp, browser, { email: 'not used', password: 'not used' });
    expect(again.tokens.claims()!.sub).toBe(tokens.claims()!.sub);
  });

  it('rotates a refresh token at B and rejects its replay at A', async () => {
    balancer.route(0);
    const { tokens } = await signIn(rp, createBrowser(), { email, password, consent: true });
    balancer.route(1);
    const rotated = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    balancer.route(0);
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    balancer.route(1);
    await expect(oidc.refreshTokenGrant(rp, rotated.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('logs out at A and finds the session gone at B', async () => {
    const browser = createBrowser();
    balancer.route(0);
    const { tokens } = await signIn(rp, browser, { email, password, consent: true });
    const confirm = await browser.follow(oidc.buildEndSessionUrl(rp, { id_token_hint: tokens.id_token! }).href);
    await browser.submit(confirm, 'form', { logout: 'yes' });
    balancer.route(1);
    const { page } = await authorize(rp, browser, { email: 'x', password: 'y' });
    expect(page.html).toContain('Incorrect email or password.');
  });

  it('rotates keys at A: both JWKS publish the new key first, then both sign with it', async () => {
    const kidAt = async (index: number) => {
      balancer.route(index);
      return decodeProtectedHeader((await oidc.clientCredentialsGrant(service, { resource: audience })).access_token).kid;
    };
    // Straight to one instance, past the balancer, but addressed to the issuer's host as the balancer forwards it.
    const jwksAt = async (port: number) =>
      (JSON.parse((await sendHttp(port, { target: '/.well-known/jwks.json', headers: { host: new URL(env.ISSUER).host } })).body) as { keys: { kid: string }[] }).keys.map((k) => k.kid);

    const oldKid = await kidAt(1);
    const rotated = await rotateSigningKey(env.KEYS_DIR, { activationDelaySeconds: 2 });
    for (const instance of instances) {
      await eventually(async () => ((await jwksAt(instance.port)).includes(rotated.jwk.kid) ? true : undefined));
    }
    expect(rotated.jwk.kid).not.toBe(oldKid);
    await eventually(async () => ((await kidAt(0)) === rotated.jwk.kid ? true : undefined));
    await eventually(async () => ((await kidAt(1)) === rotated.jwk.kid ? true : undefined));
    expect(await jwksAt(instances[1].port)).toEqual([rotated.jwk.kid, oldKid]);
  });
});
