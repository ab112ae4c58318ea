import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openServices } from '../src/services.js';
import { createBrowser } from './support/browser.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { spawnLatchkey, type LatchkeyProcess } from './support/process.js';
import { authorize, discoverRp, signIn } from './support/rp.js';

let dir: string;
let database: TestDatabase;
let env: Record<string, string>;
let client: { clientId: string; clientSecret: string };
let email: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-durability-'));
  database = await createTestDatabase(dir);
  env = { DATABASE_URL: database.url, KEYS_DIR: path.join(dir, 'keys') };
  const services = await openServices(loadConfig(env));
  const created = await createClient(services);
  client = { clientId: created.clientId, clientSecret: created.clientSecret! };
  email = (await createUser(services)).email;
  await services.database.destroy();
});
afterAll(async () => {
  await database.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const issuerOf = (instance: LatchkeyProcess) => `http://localhost:${instance.port}`;

describe('a crash in the middle of a load', () => {
  it('loses no user, client, key or completed grant after SIGKILL, and the database stays intact', async () => {
    const first = await spawnLatchkey(env);
    const rp = await discoverRp(issuerOf(first), client.clientId, client.clientSecret);
    const jwksBefore = await (await fetch(`${issuerOf(first)}/.well-known/jwks.json`)).json();
    const completed = await signIn(rp, createBrowser(), { email, password, consent: true });

    // Bounded load: sign-ins and refreshes from four loops, on loopback, until the process dies.
    let isRunning = true;
    const load = Array.from({ length: 4 }, async () => {
      while (isRunning) {
        try {
          const { tokens } = await signIn(rp, createBrowser(), { email, password, consent: true });
          await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
        } catch {
          // Requests cut by the kill fail; that is the point.
        }
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    await expect(fetch(`${issuerOf(first)}/healthz`)).rejects.toThrow(); // the server itself is gone
    isRunning = false;
    await Promise.all(load);

    const second = await spawnLatchkey(env);
    try {
      expect((await fetch(`${issuerOf(second)}/healthz`)).status).toBe(200);
      expect(await (await fetch(`${issuerOf(second)}/.well-known/jwks.json`)).json()).toEqual(jwksBefore);
      const rpAfter = await discoverRp(issuerOf(second), client.clientId, client.clientSecret);
      // The grant completed before the crash still refreshes.
      const refreshed = await oidc.refreshTokenGrant(rpAfter, completed.tokens.refresh_token!);
      expect(refreshed.access_token).toBeTruthy();
      const again = await signIn(rpAfter, createBrowser(), { email, password, consent: true });
      expect(again.tokens.claims()!.sub).toBe(completed.tokens.claims()!.sub);
    } finally {
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }

    const services = await openServices(loadConfig(env));
    try {
      if (env.DATABASE_URL.startsWith('sqlite:')) {
        expect(await services.database.raw('PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
      }
      expect((await services.accounts.list()).map((user) => user.email)).toContain(email);
      expect(await services.clients.find(client.clientId)).toBeDefined();
    } finally {
      await services.database.destroy();
    }
  }, 60_000);
});

describe('a restart', () => {
  it('keeps people signed in: cookie keys and sessions survive it', async () => {
    const first = await spawnLatchkey(env);
    const browser = createBrowser();
    const before = await signIn(await discoverRp(issuerOf(first), client.clientId, client.clientSecret), browser, { email, password, consent: true });
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const second = await spawnLatchkey(env);
    try {
      const rp = await discoverRp(issuerOf(second), client.clientId, client.clientSecret);
      // No password and no consent page: the session cookie from before the restart still signs the user in.
      const after = await signIn(rp, browser, { email: 'not used', password: 'not used' });
      expect(after.tokens.claims()!.sub).toBe(before.tokens.claims()!.sub);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  }, 30_000);
});

describe('SIGTERM', () => {
  it('finishes a request in flight, then exits 0 and refuses new connections', async () => {
    const instance = await spawnLatchkey(env);
    const rp = await discoverRp(issuerOf(instance), client.clientId, client.clientSecret);
    const browser = createBrowser();
    const { page } = await authorize(rp, browser, { email: 'someone@example.com', password: 'not yet' });
    const loginUrl = new URL(page.url.replace(/\/login$/, '') + '/login');
    const cookie = await browser.jar.getCookieString(loginUrl.href);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)![1];
    const body = new URLSearchParams({ csrf, email, password }).toString();

    // Expect: 100-continue makes the server confirm it has the request before we send the body: then it is
    // certainly in flight when SIGTERM arrives.
    const status = await new Promise<number>((resolve, reject) => {
      const request = http.request(loginUrl, {
        method: 'POST',
        headers: {
          cookie, expect: '100-continue', 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body),
        },
      }, (response) => {
        response.resume();
        resolve(response.statusCode!);
      });
      request.on('error', reject);
      request.on('continue', async () => {
        instance.child.kill('SIGTERM');
        while (!instance.output().includes('SIGTERM received')) await new Promise((resolve) => setTimeout(resolve, 20));
        request.end(body);
      });
    });
    expect(status).toBe(303);
    expect(await instance.exited).toBe(0);
    await expect(fetch(`${issuerOf(instance)}/healthz`)).rejects.toThrow();
  }, 30_000);
});
