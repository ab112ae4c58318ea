import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../examples/api/api.js';
import { deviceCodeGrantType } from '../src/registry/client-rules.js';
import { createBrowser } from './support/browser.js';
import { approveDevice, enterUserCode } from './support/device.js';
import { createUser, password } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/server.js';

const audience = 'https://api.example.test';
const clientId = 'terminal';
let server: TestServer;
let api: RunningApi;

beforeAll(async () => {
  server = await startTestServer();
  await server.services.apis.register(audience, ['read', 'write']);
  api = await startApi({ issuer: server.issuer, audience });
  await server.services.clients.register({
    clientId, name: 'Example CLI', isPublic: true, grantTypes: [deviceCodeGrantType], apis: [{ audience, scopes: ['read'] }],
  });
});
afterAll(async () => {
  await api?.close();
  await server?.close();
});

/** Runs examples/device-cli/main.ts as `npx tsx` would, with only the variables given. */
function runDeviceCli(env: Record<string, string>) {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !['ISSUER', 'CLIENT_ID', 'API_URL', 'API_AUDIENCE'].includes(name)));
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/device-cli/main.ts'], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  const userCode = new Promise<string>((resolve, reject) => {
    const check = () => {
      const match = /enter the code ([A-Z]{4}-[A-Z]{4})/.exec(stdout);
      if (match) resolve(match[1]);
    };
    child.stdout.on('data', check);
    exited.then(() => reject(new Error(`the CLI exited before printing a code:\n${stdout}${stderr}`)));
  });
  // A test that expects the CLI to stop early never awaits the code.
  userCode.catch(() => undefined);
  return { userCode, exited };
}

const env = () => ({ ISSUER: server.issuer, CLIENT_ID: clientId, API_URL: api.url, API_AUDIENCE: audience });

describe('examples/device-cli', () => {
  it('prints the URL and code, and once the person has signed in in a browser, calls the API with its token', async () => {
    const user = await createUser(server.services, { email: 'cli.user@example.com' });
    const cli = runDeviceCli(env());
    const code = await cli.userCode;
    const done = await approveDevice(createBrowser(), server.issuer, code, { email: user.email, password });
    expect(done.html).toContain('id="device-success"');

    const { code: exitCode, stdout } = await cli.exited;
    expect(exitCode).toBe(0);
    expect(stdout).toContain(`open ${server.issuer}/device and enter the code ${code}`);
    const answered = /The API answered (\d+): (.*)/.exec(stdout)!;
    expect(answered[1]).toBe('200');
    expect(JSON.parse(answered[2])).toMatchObject({ sub: user.id, clientId, scope: 'read', message: 'Hello, cli.user@example.com!' });
  });

  it('exits 1 with one line when the person cancels', async () => {
    const cli = runDeviceCli(env());
    const browser = createBrowser();
    const confirmation = await enterUserCode(browser, server.issuer, await cli.userCode);
    await browser.submit(confirmation, '#device-abort');
    const { code, stderr } = await cli.exited;
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain('access_denied');
  });

  it('reports every problem of its environment at once', async () => {
    const { code, stderr } = await runDeviceCli({ ISSUER: 'not a url', API_URL: 'ftp://x' }).exited;
    expect(code).toBe(1);
    expect(stderr.trim()).toBe('example device cli: invalid environment: ISSUER must be an http(s) URL, got "not a url"; '
      + 'CLIENT_ID is required (a public client allowed the device_code grant); API_URL must be an http(s) URL, got "ftp://x"; '
      + 'API_AUDIENCE must be an http(s) URL, got "ftp://x"');
  });
});
