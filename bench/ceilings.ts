import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import argon2 from 'argon2';
import * as jose from 'jose';
import { passwordHashOptions } from '../src/accounts/passwords.js';
import { runLoad, type LoadOptions } from './load.js';
import { documentPaths, type StaticDocument } from './static-documents.js';

/** A ceiling's rate, and the CPU seconds one of its operations costs (the process measured, all its threads). */
export type Measured = { perSecond: number; cpuSeconds: number };

/** RS256 signatures per second with jose on one thread (one core): what bounds every JWT-issuing scenario. */
export async function measureRs256(durationMs: number): Promise<Measured> {
  const { privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048 });
  const payload = { iss: 'https://bench.invalid', sub: 'user', aud: 'api', scope: 'read write', client_id: 'bench' };
  const sign = () => new jose.SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'k' }).setIssuedAt().setExpirationTime('5m').setJti(crypto.randomUUID()).sign(privateKey);
  for (let i = 0; i < 200; i++) await sign();
  let count = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  while (performance.now() - started < durationMs) {
    await sign();
    count += 1;
  }
  const cpu = process.cpuUsage(cpuBefore);
  return { perSecond: count / ((performance.now() - started) / 1000), cpuSeconds: (cpu.user + cpu.system) / 1e6 / count };
}

/**
 * argon2id hashes per second with Latchkey's own parameters, as many in flight as the sign-in scenario has users in
 * flight: argon2 runs on libuv's thread pool, so this is the machine's (all cores') password-hashing ceiling. Also
 * the CPU one hash costs (this process's, all threads): what a sign-in's server CPU is compared with.
 */
export async function measureArgon2(durationMs: number, concurrency: number): Promise<Measured> {
  await argon2.hash('warm-up password', passwordHashOptions);
  let count = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() - started < durationMs) {
      await argon2.hash('correct horse battery staple', passwordHashOptions);
      count += 1;
    }
  }));
  const cpu = process.cpuUsage(cpuBefore);
  return { perSecond: count / ((performance.now() - started) / 1000), cpuSeconds: (cpu.user + cpu.system) / 1e6 / count };
}

/**
 * Starts one of the bench's own ceiling apps (`file`, next to this one) in its own process and waits for the line
 * it prints when it listens. A pipe may deliver that line in pieces, so it is read whole.
 */
async function startCeilingApp(file: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; readyLine: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL(file, import.meta.url).pathname], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  try {
    const readyLine = await new Promise<string>((resolve, reject) => {
      readline.createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`${file} exited (${code}): ${stderr}`)));
    });
    return { child, readyLine };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

type Load = { connections: number; warmupSeconds: number; durationSeconds: number };

/**
 * A ceiling app (`bare-koa.ts`, `bare-http.ts`) answering Latchkey's own discovery document and JWKS, byte for byte,
 * in its own process with the same autocannon settings: requests per second for each.
 */
export async function measureDocumentServer(file: string, documents: Record<string, StaticDocument>, options: Load): Promise<{ discovery: Measured; jwks: Measured }> {
  const { child, readyLine: port } = await startCeilingApp(file, { BENCH_DOCUMENTS: JSON.stringify(documents) });
  try {
    const measure = async (path: string) => {
      const url = `http://127.0.0.1:${port}${path}`;
      await runLoad({ url, connections: options.connections, duration: options.warmupSeconds });
      const result = await runLoad({ url, connections: options.connections, duration: options.durationSeconds, pid: child.pid! });
      if (result.failures > 0) throw new Error(`${file} failed ${result.failures} requests to ${path}`);
      return { perSecond: result.requestsPerSecond, cpuSeconds: (result.cpuSecondsPer1000 ?? 0) / 1000 };
    };
    return { discovery: await measure(documentPaths.discovery), jwks: await measure(documentPaths.jwks) };
  } finally {
    child.kill('SIGKILL');
  }
}

/**
 * oidc-provider alone (its in-memory adapter, none of Latchkey's middleware, `oidc-provider-alone.ts` in its own
 * process): the ceiling of userinfo and introspection, which are the library's work plus five or six lookups.
 */
export async function measureOidcProviderAlone(options: Load): Promise<{ userinfo: Measured; introspection: Measured }> {
  const { child, readyLine } = await startCeilingApp('./oidc-provider-alone.ts');
  try {
    const [port, token] = readyLine.split(' ');
    const base = `http://127.0.0.1:${port}`;
    /** Requests per second; every answer must contain `expected` (a 200 that says the token is inactive is cheap). */
    const measure = async (expected: string, load: Omit<LoadOptions, 'connections'>) => {
      let unexpected = 0;
      const onResponse = (_status: number, body: string) => void (body.includes(expected) || (unexpected += 1));
      await runLoad({ ...load, onResponse, connections: options.connections, duration: options.warmupSeconds });
      const result = await runLoad({ ...load, onResponse, connections: options.connections, duration: options.durationSeconds, pid: child.pid! });
      if (result.failures + unexpected > 0) throw new Error(`oidc-provider alone failed ${result.failures + unexpected} requests to ${load.url}`);
      return { perSecond: result.requestsPerSecond, cpuSeconds: (result.cpuSecondsPer1000 ?? 0) / 1000 };
    };
    return {
      userinfo: await measure('"sub":"bench-account"', { url: `${base}/me`, headers: { authorization: `Bearer ${token}` } }),
      introspection: await measure('"active":true', {
        url: `${base}/token/introspection`, method: 'POST', body: `token=${token}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('bench:bench%20secret').toString('base64')}` },
      }),
    };
  } finally {
    child.kill('SIGKILL');
  }
}
