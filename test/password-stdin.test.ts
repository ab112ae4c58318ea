import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser } from './support/browser.js';
import { runCliCapturing } from './support/cli.js';
import { createClient } from './support/fixtures.js';
import { authorize, discoverRp, redirectUri, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

const bin = path.resolve('bin/latchkey.js');
let server: TestServer;
let rp: oidc.Configuration;
let env: Record<string, string>;

beforeAll(async () => {
  server = await startTestServer();
  env = { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir };
  const client = await createClient(server.services, { skipConsent: true });
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
});
afterAll(() => server.close());

const cli = (argv: string[], stdin?: string) => runCliCapturing(argv, env, undefined, stdin);

async function signsIn(email: string, password: string): Promise<boolean> {
  const flow = await authorize(rp, createBrowser(), { email, password });
  return flow.page.url.startsWith(redirectUri);
}

/** Everything a process wrote, and how it ended. */
function finished(child: ChildProcess): Promise<{ code: number | null; output: string }> {
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

describe('--password-stdin', () => {
  it('creates a user with the first line of standard input as the password', async () => {
    const created = await cli(['users', 'create', '--email', 'piped@example.com', '--password-stdin', '--json'], 'a piped passphrase 3f9c\nnot read\n');
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(created.stdout).email).toBe('piped@example.com');
    const { tokens } = await signIn(rp, createBrowser(), { email: 'piped@example.com', password: 'a piped passphrase 3f9c' });
    expect(tokens.claims()!.sub).toBe(JSON.parse(created.stdout).id);
  });

  it('sets a password that the latchkey process read from a pipe and never had in its arguments', async () => {
    expect((await cli(['users', 'create', '--email', 'process@example.com', '--password-stdin'], 'the first passphrase 11\n')).code).toBe(0);
    const secret = 'the second passphrase 22';
    const child = spawn(process.execPath, [bin, 'users', 'set-password', '--email', 'process@example.com', '--password-stdin'],
      { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const done = finished(child);
    // What `ps` and /proc show every user of the host, while the process waits for its standard input.
    const commandLine = fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
    expect(commandLine).toContain('--password-stdin');
    expect(commandLine.join(' ')).not.toContain(secret);
    child.stdin!.end(`${secret}\r\n`);
    const { code, output } = await done;
    expect(output).toContain('password changed for process@example.com');
    expect(code).toBe(0);
    expect(await signsIn('process@example.com', secret)).toBe(true);
    expect(await signsIn('process@example.com', 'the first passphrase 11')).toBe(false);
  });

  it('reads the password at a terminal without echoing it', async () => {
    const secret = 'typed at a terminal 7d2e';
    const quote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`;
    const command = [process.execPath, bin, 'users', 'create', '--email', 'terminal@example.com', '--password-stdin'].map(quote).join(' ');
    // script(1) runs the command on a pseudo-terminal and copies everything the terminal shows to its stdout.
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'ignore'] });
    const done = finished(child);
    let shown = '';
    await new Promise<void>((resolve) => child.stdout!.on('data', (chunk: Buffer) => {
      shown += chunk.toString();
      if (shown.includes('(not shown), then Enter:')) resolve();
    }));
    child.stdin!.write(`${secret}\r`);
    const { code, output } = await done;
    child.stdin!.end();
    expect(output).toContain('created user terminal@example.com');
    expect(code).toBe(0);
    expect(output).not.toContain(secret);
    expect(await signsIn('terminal@example.com', secret)).toBe(true);
  });

  it.each([
    [['users', 'create', '--email', 'both@example.com', '--password', 'an argument passphrase', '--password-stdin'], 'a piped passphrase 44\n',
      'latchkey: --password and --password-stdin exclude each other'],
    [['users', 'set-password', '--email', 'piped@example.com', '--password-stdin', '--password', 'an argument passphrase'], 'a piped passphrase 44\n',
      'latchkey: --password and --password-stdin exclude each other'],
    [['users', 'create', '--email', 'empty@example.com', '--password-stdin'], '', 'latchkey: --password-stdin: standard input held no password'],
    [['users', 'create', '--email', 'blank@example.com', '--password-stdin'], '\n', 'latchkey: --password-stdin: standard input held no password'],
    [['users', 'create', '--email', 'none@example.com'], undefined, 'latchkey: --password-stdin (or --password) is required'],
  ])('refuses %j with one line and exit code 1, changing nothing', async (argv, stdin, message) => {
    const result = await cli(argv, stdin);
    expect(result).toEqual({ code: 1, stdout: '', stderr: message });
    expect(await signsIn('piped@example.com', 'a piped passphrase 3f9c')).toBe(true);
    if (argv[1] === 'create') expect(await server.services.accounts.findByEmail(argv[3])).toBeUndefined();
  });
});
