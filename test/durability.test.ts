import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/database.js';
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
/** One user per load loop, so every loop signs in as someone else. */
let loadUsers: { id: string; email: string }[];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-durability-'));
  database = await createTestDatabase(dir);
  env = { DATABASE_URL: database.url, KEYS_DIR: path.join(dir, 'keys') };
  const services = await openServices(loadConfig(env));
  const created = await createClient(services);
  client = { clientId: created.clientId, clientSecret: created.clientSecret! };
  await createClient(services, { grantTypes: ['client_credentials'], redirectUris: [] });
  email = (await createUser(services)).email;
  loadUsers = [];
  for (let loop = 0; loop < 4; loop += 1) loadUsers.push(await createUser(services));
  await services.close();
});
afterAll(async () => {
  await database.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const issuerOf = (instance: LatchkeyProcess) => `http://localhost:${instance.port}`;

/** A grant as its app saw it: the refresh tokens it received, oldest first, and whether a refresh was under way. */
type Chain = { sub: string; refreshTokens: string[]; isRefreshing: boolean; isFinished: boolean };

/**
 * Checks what the crash left behind before anything else touches the database. SQLite: `PRAGMA integrity_check`
 * (pages, b-trees, indexes). PostgreSQL has no counterpart to run here and needs none: the killed process is only a
 * client, a transaction it did not commit is rolled back by the server, and the server's own storage is untouched
 * (its crash recovery is PostgreSQL's business, not Latchkey's). On both: the logical consistency Latchkey relies
 * on — no code or token whose grant is missing, and a stored grant for every sign-in the apps completed.
 */
async function checkDatabaseAfterCrash(completedSignIns: number) {
  const opened = openDatabase(env.DATABASE_URL);
  const connection = opened.knex;
  try {
    if (env.DATABASE_URL.startsWith('sqlite:')) {
      expect(await connection.raw('PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
    }
    const orphans = await connection('oidc_payloads as issued')
      .whereNotNull('issued.grant_id')
      .whereNotExists((query) => query.select('*').from('oidc_payloads as parent')
        .where('parent.model', 'Grant').whereRaw('parent.id = issued.grant_id'))
      .select('issued.model', 'issued.id');
    expect(orphans).toEqual([]);
    const [{ count }] = await connection('oidc_payloads').where({ model: 'Grant' }).count({ count: '*' });
    expect(Number(count)).toBeGreaterThanOrEqual(completedSignIns);
  } finally {
    await opened.destroy();
  }
}

describe('a crash in the middle of a load', () => {
  it('loses no user, client, key or completed grant after SIGKILL, and the database stays intact', async () => {
    const first = await spawnLatchkey(env);
    try {
      const rp = await discoverRp(issuerOf(first), client.clientId, client.clientSecret);
      const jwksBefore = await (await fetch(`${issuerOf(first)}/.well-known/jwks.json`)).json();
      const keyFilesBefore = fs.readdirSync(env.KEYS_DIR).sort();
      const before = await openServices(loadConfig(env));
      const usersBefore = (await before.accounts.list()).map((user) => ({ id: user.id, email: user.email }));
      const clientsBefore = await before.clients.list();
      await before.close();

      // Bounded load on loopback: four loops, each signing in and then rotating its grant's refresh token 2, 4, 8
      // or 16 times, again and again; the different lengths keep the loops out of step, so at the kill some are
      // signing in and some refreshing. A response counts only if it arrived before the kill: a request cut by the
      // kill may or may not have been committed, so nothing is asserted about it.
      const refreshesPerChain = [2, 4, 8, 16];
      const killAfter = 20;
      const chains: Chain[] = [];
      let isKilled = false;
      let completed = 0;
      let enough!: () => void;
      let failed!: (error: unknown) => void;
      const progress = new Promise<void>((resolve, reject) => {
        enough = resolve;
        failed = reject;
      });
      // The kill comes after `killAfter` sign-ins and refreshes, once at least one grant has finished its
      // rotations: then some chains are idle (their latest token must refresh after the restart) while the other
      // loops are still signing in or refreshing.
      const recordCompleted = () => {
        completed += 1;
        if (completed >= killAfter && chains.some((chain) => chain.isFinished)) enough();
      };
      const load = loadUsers.map(async (user, loop) => {
        while (!isKilled) {
          try {
            const { tokens } = await signIn(rp, createBrowser(), { email: user.email, password, consent: true });
            if (isKilled) return;
            const chain: Chain = { sub: tokens.claims()!.sub, refreshTokens: [tokens.refresh_token!], isRefreshing: false, isFinished: false };
            chains.push(chain);
            recordCompleted();
            for (let refresh = 0; refresh < refreshesPerChain[loop]; refresh += 1) {
              chain.isRefreshing = true;
              const refreshed = await oidc.refreshTokenGrant(rp, chain.refreshTokens.at(-1)!);
              if (isKilled) return;
              chain.refreshTokens.push(refreshed.refresh_token!);
              chain.isRefreshing = false;
              chain.isFinished = refresh === refreshesPerChain[loop] - 1;
              recordCompleted();
            }
          } catch (error) {
            // After the kill, requests fail: that is the point. Before it, nothing may.
            if (!isKilled) failed(error);
            return;
          }
        }
      });

      // Wait on the counter, not a timer: the kill comes once the load has really made progress.
      await progress;
      // What the apps hold at the instant of the kill; responses that arrive later are not counted.
      const snapshot: Chain[] = chains.map((chain) => ({ ...chain, refreshTokens: [...chain.refreshTokens] }));
      isKilled = true;
      first.child.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      await Promise.all(load);
      await expect(fetch(`${issuerOf(first)}/healthz`)).rejects.toThrow(); // the server itself is gone
      expect(snapshot.reduce((sum, chain) => sum + chain.refreshTokens.length, 0)).toBeGreaterThanOrEqual(killAfter);
      // At least one grant is checked both ways below: its latest token refreshes, its older ones are refused.
      expect(snapshot.some((chain) => !chain.isRefreshing && chain.refreshTokens.length > 1)).toBe(true);

      await checkDatabaseAfterCrash(snapshot.length);

      const second = await spawnLatchkey(env);
      try {
        expect((await fetch(`${issuerOf(second)}/healthz`)).status).toBe(200);
        // Every key, user and client from before is still there.
        expect(fs.readdirSync(env.KEYS_DIR).sort()).toEqual(keyFilesBefore);
        expect(await (await fetch(`${issuerOf(second)}/.well-known/jwks.json`)).json()).toEqual(jwksBefore);
        const after = await openServices(loadConfig(env));
        try {
          expect((await after.accounts.list()).map((user) => ({ id: user.id, email: user.email }))).toEqual(usersBefore);
          expect(await after.clients.list()).toEqual(clientsBefore);
        } finally {
          await after.close();
        }

        const rpAfter = await discoverRp(issuerOf(second), client.clientId, client.clientSecret);
        for (const chain of snapshot) {
          const rotatedAway = chain.refreshTokens.slice(0, -1);
          if (!chain.isRefreshing) {
            // The latest refresh token the app received still refreshes, for the same user …
            const refreshed = await oidc.refreshTokenGrant(rpAfter, chain.refreshTokens.at(-1)!);
            expect(refreshed.claims()!.sub).toBe(chain.sub);
          }
          // … and one it already rotated away is still known as used: replaying it fails (and revokes the grant).
          for (const token of rotatedAway) {
            await expect(oidc.refreshTokenGrant(rpAfter, token)).rejects.toMatchObject({ error: 'invalid_grant' });
          }
        }

        // The service answers: a new sign-in works.
        const again = await signIn(rpAfter, createBrowser(), { email, password, consent: true });
        expect(again.tokens.refresh_token).toBeTruthy();
      } finally {
        second.child.kill('SIGTERM');
        expect(await second.exited).toBe(0);
      }
    } finally {
      if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL');
    }
  }, 30_000);
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
