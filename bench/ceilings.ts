import { spawn } from 'node:child_process';
import argon2 from 'argon2';
import * as jose from 'jose';
import { passwordHashOptions } from '../src/accounts/passwords.js';
import { runLoad, type LoadResult } from './load.js';

/** RS256 signatures per second with jose on one thread (one core): what bounds every JWT-issuing scenario. */
export async function measureRs256SignsPerSecond(durationMs: number): Promise<number> {
  const { privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048 });
  const payload = { iss: 'https://bench.invalid', sub: 'user', aud: 'api', scope: 'read write', client_id: 'bench' };
  const sign = () => new jose.SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'k' }).setIssuedAt().setExpirationTime('5m').setJti(crypto.randomUUID()).sign(privateKey);
  for (let i = 0; i < 200; i++) await sign();
  let count = 0;
  const started = performance.now();
  while (performance.now() - started < durationMs) {
    await sign();
    count += 1;
  }
  return count / ((performance.now() - started) / 1000);
}

/**
 * argon2id hashes per second with Latchkey's own parameters, as many in flight as the sign-in scenario has users in
 * flight: argon2 runs on libuv's thread pool, so this is the machine's (all cores') password-hashing ceiling.
 */
export async function measureArgon2HashesPerSecond(durationMs: number, concurrency: number): Promise<number> {
  await argon2.hash('warm-up password', passwordHashOptions);
  let count = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() - started < durationMs) {
      await argon2.hash('correct horse battery staple', passwordHashOptions);
      count += 1;
    }
  }));
  return count / ((performance.now() - started) / 1000);
}

/** A bare Koa app serving one static JSON document, in its own process: the HTTP ceiling of Node + Koa here. */
export async function measureBareKoa(options: { connections: number; warmupSeconds: number; durationSeconds: number }): Promise<LoadResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./bare-koa.ts', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
      child.once('exit', (code) => reject(new Error(`bare Koa app exited (${code})`)));
    });
    const url = `http://127.0.0.1:${port}/.well-known/openid-configuration`;
    await runLoad({ url, connections: options.connections, duration: options.warmupSeconds });
    return await runLoad({ url, connections: options.connections, duration: options.durationSeconds, pid: child.pid! });
  } finally {
    child.kill('SIGKILL');
  }
}
