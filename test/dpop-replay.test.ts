import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../src/server.js';
import { startBalancer } from './support/balancer.js';
import { createClient } from './support/fixtures.js';
import { sendHttp } from './support/raw-http.js';
import { startTestServer, type TestServer } from './support/server.js';

// RFC 9449 §11.1: a DPoP proof is good for one request. Latchkey remembers the proofs it has seen in the database,
// so two instances (or two workers) behind one issuer share the memory: a proof used at one is refused at the other,
// and of two requests carrying the same proof at the same moment, at different instances, exactly one succeeds.

const audience = 'https://api.example.test';
let balancer: Awaited<ReturnType<typeof startBalancer>>;
let first: TestServer;
let second: RunningServer;
let issuer: string;
let authorization: string;
let key: { privateKey: CryptoKey; jwk: JWK };

beforeAll(async () => {
  balancer = await startBalancer();
  issuer = `http://localhost:${balancer.port}`;
  first = await startTestServer({ issuer });
  second = await startServer({ ...first.config });
  balancer.setBackends([first.port, second.port]);
  await first.services.apis.register(audience, ['read']);
  const client = await createClient(first.services, { grantTypes: ['client_credentials'], redirectUris: [], apis: [{ audience, scopes: ['read'] }] });
  authorization = `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`;
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  key = { privateKey, jwk: await exportJWK(publicKey) };
});
afterAll(async () => {
  await second?.close();
  await first?.close();
  await balancer?.close();
});

const proof = () => new SignJWT({ htm: 'POST', htu: `${issuer}/token`, jti: randomUUID() })
  .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk })
  .setIssuedAt()
  .sign(key.privateKey);

/** A client_credentials request with `dpop` straight to one instance, addressed to the shared issuer. */
async function tokenAt(instance: { port: number }, dpop: string) {
  const answer = await sendHttp(instance.port, {
    method: 'POST', target: '/token', body: new URLSearchParams({ grant_type: 'client_credentials', resource: audience, scope: 'read' }).toString(),
    headers: { host: `localhost:${balancer.port}`, authorization, dpop, 'content-type': 'application/x-www-form-urlencoded' },
  });
  return { status: answer.status, body: JSON.parse(answer.body) as Record<string, unknown> };
}

describe('DPoP proof replay across instances', () => {
  it('refuses at the second instance a proof the first has accepted', async () => {
    const used = await proof();
    expect(await tokenAt(first, used)).toMatchObject({ status: 200, body: { token_type: 'DPoP' } });
    // invalid_grant is oidc-provider's answer to a replayed proof at the token endpoint (it hides the detail).
    expect(await tokenAt(second, used)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await tokenAt(first, used)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await tokenAt(second, await proof())).toMatchObject({ status: 200, body: { token_type: 'DPoP' } });
  });

  it('lets exactly one of two simultaneous requests with the same proof, at two instances, through', async () => {
    for (let round = 0; round < 12; round++) {
      const shared = await proof();
      const answers = await Promise.all([tokenAt(first, shared), tokenAt(second, shared)]);
      expect(answers.map((answer) => answer.status).sort()).toEqual([200, 400]);
    }
  });
});
