import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../examples/api/api.js';
import { startSpa, type RunningSpa } from '../examples/spa/spa.js';
import { startTestServer, type TestServer } from './support/server.js';

// The example SPA's server (what it serves and with which headers), its entry point, and the example API's CORS.
// The sign-in itself runs in Chromium: test/browser/spa.test.ts.

const audience = 'https://api.example.test';
let server: TestServer;
let spa: RunningSpa;
let api: RunningApi;

beforeAll(async () => {
  server = await startTestServer();
  spa = await startSpa({ issuer: server.issuer, clientId: 'spa', apiUrl: 'http://localhost:4999', apiAudience: audience });
  api = await startApi({ issuer: server.issuer, audience, corsOrigins: [spa.url] });
});
afterAll(async () => {
  await api?.close();
  await spa?.close();
  await server?.close();
});

describe('the example SPA\'s server', () => {
  it('serves the page for each route with a CSP allowing only its own scripts and Latchkey and the API to fetch', async () => {
    for (const route of ['/', '/callback', '/signed-out']) {
      const response = await fetch(`${spa.url}${route}`);
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('<script type="module" src="/app.js">');
      expect(response.headers.get('content-security-policy')).toBe(
        `default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' ${server.issuer} http://localhost:4999; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`);
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    }
  });

  it('serves oauth4webapi\'s own build from its origin, and its settings', async () => {
    const vendor = await fetch(`${spa.url}/vendor/oauth4webapi.js`);
    expect(vendor.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await vendor.text()).toBe(fs.readFileSync('node_modules/oauth4webapi/build/index.js', 'utf8'));
    expect(await (await fetch(`${spa.url}/settings.json`)).json()).toEqual({ issuer: server.issuer, clientId: 'spa', apiUrl: 'http://localhost:4999', apiAudience: audience });
  });

  it('serves nothing else', async () => {
    expect((await fetch(`${spa.url}/../package.json`)).status).toBe(404);
    expect((await fetch(`${spa.url}/public/app.js`)).status).toBe(404);
    expect((await fetch(`${spa.url}/`, { method: 'POST' })).status).toBe(405);
  });
});

describe('the example API\'s CORS', () => {
  const preflight = (origin: string) => fetch(`${api.url}/hello`, {
    method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization, dpop' },
  });

  it('answers the preflight of an allowed origin and lets it read a refusal\'s challenge', async () => {
    const response = await preflight(spa.url);
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe(spa.url);
    expect(response.headers.get('access-control-allow-headers')).toBe('Authorization, DPoP');
    const refused = await fetch(`${api.url}/hello`, { headers: { origin: spa.url } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-expose-headers')).toBe('WWW-Authenticate');
  });

  it('allows no other origin', async () => {
    const response = await preflight('https://evil.example');
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect((await fetch(`${api.url}/hello`, { headers: { origin: 'https://evil.example' } })).headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('examples/spa/main.ts', () => {
  function run(env: Record<string, string>) {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/spa/main.ts'], {
      env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const exited = new Promise<number | string>((resolve) => child.once('close', (code, signal) => resolve(code ?? signal ?? -1)));
    return { child, exited, output: () => output };
  }

  it('reports every bad variable on one line and exits 1', async () => {
    const started = run({ SPA_PORT: 'abc', ISSUER: 'not a url' });
    expect(await started.exited).toBe(1);
    expect(started.output().trim()).toBe('example spa: invalid environment: SPA_PORT must be a port number from 0 to 65535, got "abc"; ISSUER must be an absolute URL, got "not a url"');
  });

  it('starts on the port given and stops on SIGTERM', async () => {
    const started = run({ SPA_PORT: '0', ISSUER: server.issuer });
    const deadline = Date.now() + 20_000;
    while (!/example spa: (http:\S+)/.test(started.output())) {
      if (Date.now() > deadline) throw new Error(`not started: ${started.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const url = /example spa: (http:\S+)/.exec(started.output())![1];
    expect(await (await fetch(`${url}/settings.json`)).json()).toMatchObject({ issuer: server.issuer, clientId: 'spa', apiUrl: 'http://localhost:4000' });
    started.child.kill('SIGTERM');
    expect(await started.exited).toBe(0);
  });
});
