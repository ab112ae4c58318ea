import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openServices } from '../src/services.js';
import { createBrowser } from './support/browser.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { spawnLatchkey } from './support/process.js';
import { hashingConcurrency, workerThreadPoolSize } from '../src/thread-pool.js';
import { discoverRp, signIn } from './support/rp.js';

let dir: string;
let database: TestDatabase;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-workers-'));
  database = await createTestDatabase(dir);
});
afterAll(async () => {
  await database.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('WORKERS=2', () => {
  it('runs two worker processes on one port that serve sign-ins together, and stops them all on SIGTERM', async () => {
    const env = { DATABASE_URL: database.url, KEYS_DIR: path.join(dir, 'keys'), WORKERS: '2' };
    const instance = await spawnLatchkey(env);
    const deadline = Date.now() + 20_000;
    while (instance.servingLines().length < 2) {
      if (Date.now() > deadline) throw new Error(`second worker did not start:\n${instance.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const serving = instance.servingLines();
    expect(new Set(serving.map((line) => line.port)).size).toBe(1);
    expect(new Set(serving.map((line) => line.pid)).size).toBe(2);
    // The primary gave each worker a thread pool with room for its share of the hashes and two threads more.
    const threads = workerThreadPoolSize(2, null);
    const tuning = expect.objectContaining({ threadPoolSize: threads, hashingConcurrency: hashingConcurrency(2, threads) });
    expect(serving).toEqual([tuning, tuning]);

    const services = await openServices(loadConfig(env));
    const client = await createClient(services);
    const users = await Promise.all([createUser(services), createUser(services), createUser(services), createUser(services)]);
    await services.close();
    const rp = await discoverRp(`http://localhost:${instance.port}`, client.clientId, client.clientSecret!);
    const results = await Promise.all(users.map((user) => signIn(rp, createBrowser(), { email: user.email, password, consent: true })));
    expect(results.map((result) => result.tokens.claims()!.sub)).toEqual(users.map((user) => user.id));

    instance.child.kill('SIGTERM');
    expect(await instance.exited).toBe(0);
    expect(instance.output()).toContain('"event":"workers.stopping"');
    expect(instance.output()).toContain('stopping 2 workers');
  }, 60_000);

  it("keeps an operator's UV_THREADPOOL_SIZE and keeps two of its threads free of password hashing", async () => {
    const env = { DATABASE_URL: database.url, KEYS_DIR: path.join(dir, 'keys'), WORKERS: '1', UV_THREADPOOL_SIZE: '3' };
    const instance = await spawnLatchkey(env);
    expect(instance.servingLines()).toEqual([expect.objectContaining({ threadPoolSize: 3, hashingConcurrency: 1 })]);
    instance.child.kill('SIGTERM');
    expect(await instance.exited).toBe(0);
  }, 30_000);
});
