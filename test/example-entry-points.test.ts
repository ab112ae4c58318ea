import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, textOf } from './support/browser.js';
import { createUser, password } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/server.js';

/** Every variable the entry points read: a test sets the ones it means, the test runner's own never leak in. */
const exampleVariables = ['ISSUER', 'CLIENT_ID', 'CLIENT_SECRET', 'APP_PORT', 'APP_NAME', 'API_URL', 'API_AUDIENCE', 'API_PORT',
  'DEMO_DIR', 'LATCHKEY_PORT', 'APP1_PORT', 'APP2_PORT', 'DEMO_EMAIL', 'DEMO_PASSWORD', 'PORT', 'API_CORS_ORIGINS', 'SPA_PORT'];

type ExampleProcess = {
  output: () => string;
  /** Resolves with the first match of `pattern` in stdout, or rejects when the process exits first. */
  waitFor: (pattern: RegExp) => Promise<RegExpExecArray>;
  stop: () => void;
  exited: Promise<{ code: number | string; stdout: string; stderr: string }>;
};

/** Runs an example's entry point as `npx tsx FILE` would: Node with tsx as a loader, so signals reach it directly. */
function runExample(file: string, env: Record<string, string>): ExampleProcess {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !exampleVariables.includes(name)));
  const child = spawn(process.execPath, ['--import', 'tsx', file], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const exited = new Promise<{ code: number | string; stdout: string; stderr: string }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code: code ?? signal ?? -1, stdout, stderr }));
  });
  return {
    output: () => stdout + stderr,
    waitFor: (pattern) => new Promise((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(stdout);
        if (match) resolve(match);
      };
      child.stdout.on('data', check);
      check();
      exited.then(({ code }) => reject(new Error(`${file} exited (${code}) before printing ${pattern}:\n${stdout}${stderr}`)));
    }),
    stop: () => child.kill('SIGTERM'),
    exited,
  };
}

describe('examples/web-app/main.ts and examples/api/main.ts, started on their own', () => {
  const audience = 'https://api.example.test';
  let server: TestServer;
  let api: ExampleProcess;
  let app: ExampleProcess;

  beforeAll(async () => {
    server = await startTestServer();
    await server.services.apis.register(audience, ['read']);
  });
  afterAll(async () => {
    for (const running of [app, api]) {
      running?.stop();
      await running?.exited;
    }
    await server?.close();
  });

  it('serves the home page, sends "Sign in" to Latchkey\'s /auth, calls the API, and stops on SIGTERM', async () => {
    api = runExample('examples/api/main.ts', { ISSUER: server.issuer, API_PORT: '0', API_AUDIENCE: audience });
    const [, apiUrl] = await api.waitFor(/^example api: (http:\/\/localhost:\d+)\/hello$/m);

    const clientId = 'standalone';
    const clientSecret = randomBytes(32).toString('base64url');
    app = runExample('examples/web-app/main.ts', {
      ISSUER: server.issuer, CLIENT_ID: clientId, CLIENT_SECRET: clientSecret,
      APP_PORT: '0', APP_NAME: 'Standalone', API_URL: apiUrl, API_AUDIENCE: audience,
    });
    const [, appUrl] = await app.waitFor(/^example web app: (http:\/\/localhost:\d+) /m);
    // The port is the OS's choice, so the app can only be registered now that it has printed its URL.
    await server.services.clients.register({
      clientId, clientSecret, name: 'Standalone', skipConsent: true, apis: [{ audience, scopes: ['read'] }],
      redirectUris: [`${appUrl}/callback`], postLogoutRedirectUris: [`${appUrl}/signed-out`],
      backchannelLogoutUri: `${appUrl}/backchannel-logout`, grantTypes: ['authorization_code', 'refresh_token'],
    });

    const browser = createBrowser();
    const home = await browser.follow(`${appUrl}/`);
    expect(home.status).toBe(200);
    expect(textOf(home.html, '.app')).toBe('Standalone');
    expect(textOf(home.html, '#status')).toBe('You are not signed in.');

    const signIn = await browser.request(`${appUrl}/login`);
    expect(signIn.status).toBe(302);
    const authorization = new URL(signIn.headers.get('location')!);
    expect(`${authorization.origin}${authorization.pathname}`).toBe(`${server.issuer}/auth`);
    expect(Object.fromEntries(authorization.searchParams)).toMatchObject({
      client_id: clientId, redirect_uri: `${appUrl}/callback`, response_type: 'code', code_challenge_method: 'S256', resource: audience,
    });

    // Latchkey accepts the request (the login form, not its error page), and the whole sign-in works.
    const login = await browser.follow(authorization.href);
    expect(login.status).toBe(200);
    const user = await createUser(server.services);
    const signedIn = await browser.submit(login, 'form[action$="/login"]', { email: user.email, password });
    expect(signedIn.url).toBe(`${appUrl}/`);
    expect(textOf(signedIn.html, '#sub')).toBe(user.id);
    const answered = await browser.submit(signedIn, 'form#call-api');
    expect(textOf(answered.html, 'h2')).toBe('The API answered 200');
    expect(JSON.parse(textOf(answered.html, '#api-answer')!)).toMatchObject({ sub: user.id, clientId });

    for (const running of [app, api]) {
      running.stop();
      expect((await running.exited).code).toBe(0);
    }
  });
});

describe('the examples\' entry points refuse a bad environment', () => {
  /** Exit code 1 and one line on stderr, starting with `prefix`, with no stack trace. */
  async function refusal(file: string, env: Record<string, string>, prefix: string): Promise<string> {
    const { code, stdout, stderr } = await runExample(file, env).exited;
    expect(code, stdout + stderr).toBe(1);
    // Node 20 makes oidc-provider (which only the demo loads) warn about the runtime on stderr; that line is not ours.
    const lines = stderr.split('\n').filter((line) => line !== '' && !line.startsWith('oidc-provider WARNING'));
    expect(lines, stderr).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^${prefix}: invalid environment: `));
    expect(stdout).toBe('');
    return lines[0];
  }

  it('web app: reports a non-numeric port and a missing issuer (and client) together, and exits 1', async () => {
    const line = await refusal('examples/web-app/main.ts', { APP_PORT: 'abc' }, 'example web app');
    expect(line).toContain('ISSUER is required');
    expect(line).toContain('APP_PORT must be a port number from 0 to 65535, got "abc"');
    expect(line).toContain('CLIENT_ID is required');
    expect(line).toContain('CLIENT_SECRET is required');
    expect(line).not.toContain('NaN');
  });

  it('web app: refuses URLs that are not http(s) and a port out of range', async () => {
    const line = await refusal('examples/web-app/main.ts', {
      ISSUER: 'localhost:3000', CLIENT_ID: 'a', CLIENT_SECRET: 'b', API_URL: 'ftp://api.example.test', APP_PORT: '65536',
    }, 'example web app');
    expect(line).toBe('example web app: invalid environment: ISSUER must be an http(s) URL, got "localhost:3000"; '
      + 'APP_PORT must be a port number from 0 to 65535, got "65536"; API_URL must be an http(s) URL, got "ftp://api.example.test"');
  });

  it('api: reports a non-numeric port and a bad issuer together, and exits 1', async () => {
    const line = await refusal('examples/api/main.ts', { API_PORT: 'abc', ISSUER: 'not a url' }, 'example api');
    expect(line).toBe('example api: invalid environment: ISSUER must be an http(s) URL, got "not a url"; '
      + 'API_PORT must be a port number from 0 to 65535, got "abc"');
  });

  it('demo: reports every bad port at once before creating anything, and exits 1', async () => {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-demo-')), 'data');
    try {
      const line = await refusal('examples/demo.ts', { DEMO_DIR: dir, LATCHKEY_PORT: 'abc', APP2_PORT: '0' }, 'demo');
      expect(line).toBe('demo: invalid environment: LATCHKEY_PORT must be a port number from 1 to 65535, got "abc"; '
        + 'APP2_PORT must be a port number from 1 to 65535, got "0"');
      expect(fs.existsSync(dir)).toBe(false);
    } finally {
      fs.rmSync(path.dirname(dir), { recursive: true, force: true });
    }
  });
});
