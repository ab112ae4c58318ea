import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser } from './support/browser.js';
import { runCliCapturing } from './support/cli.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { authorize, discoverRp, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

// Terminal attacks typed where Latchkey accepts text (lower case, as emails are stored): bold (ESC [), a window
// title (OSC … BEL), red (CSI as the C1 control 0x9b), DEL, a right-to-left override and an isolate that reorder the
// rest of the line.
const hostile = 'ev\x1b[1m\x1b]0;owned\x07il\x9b31m\x7f\u202egro.\u2066@example.com';
// How the CLI shows it.
const escaped = 'ev\\x1b[1m\\x1b]0;owned\\x07il\\x9b31m\\x7f\\u{202e}gro.\\u{2066}@example.com';
// Any character a terminal would obey or hide, other than the newlines between lines.
const raw = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u;

const lines: string[] = [];
let server: TestServer;
let cliEnv: Record<string, string>;

beforeAll(async () => {
  server = await startTestServer({}, undefined, { logDestination: { write: (line: string) => void lines.push(line) } });
  cliEnv = { DATABASE_URL: server.config.databaseUrl, KEYS_DIR: server.config.keysDir };
});
afterAll(() => server.close());

const cli = (...argv: string[]) => runCliCapturing(argv, cliEnv);

describe('text an attacker typed, on the way to an operator', () => {
  it('never prints the control characters of a login email raw in `latchkey events`, in its log line or its JSON', async () => {
    const client = await createClient(server.services);
    const rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
    const failed = await authorize(rp, createBrowser(), { email: hostile, password: 'a wrong password' });
    expect(failed.page.status).toBe(200);
    await server.services.audit.settled();

    const events = await cli('events');
    expect(events.code).toBe(0);
    expect(events.stdout).not.toMatch(raw);
    expect(events.stdout).toContain(escaped);

    // JSON keeps the exact value, with every dangerous character as a \u escape.
    const asJson = await cli('events', '--json');
    expect(asJson.stdout).not.toMatch(raw);
    expect(JSON.parse(asJson.stdout).map((event: { email: string }) => event.email)).toContain(hostile);

    const logged = lines.filter((line) => line.includes('sign_in.failure'));
    expect(logged).toHaveLength(1);
    expect(logged[0].slice(0, -1)).not.toMatch(raw);
    expect(JSON.parse(logged[0]).email).toBe(hostile);
  });

  it('keeps what a client sends the token endpoint out of the events table: an unsupported grant type is recorded as such', async () => {
    const client = await createClient(server.services);
    const { token_endpoint: tokenEndpoint } = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json() as { token_endpoint: string };
    const response = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'x\x1b[31m\u202e', code: 'c', redirect_uri: 'http://localhost:8765/callback' }),
    });
    expect(response.status).toBe(400);
    await server.services.audit.settled();
    const events = await cli('events');
    expect(events.stdout).not.toMatch(raw);
    // The audit trail records a grant type only when Latchkey supports it, so the hostile one never reaches it.
    expect(events.stdout).toContain('grantType=unsupported');
  });

  it('escapes every CLI table and human-readable line', async () => {
    expect((await cli('users', 'create', '--email', 'named@example.com', '--password', password, '--given-name', hostile)).code).toBe(0);
    expect((await cli('clients', 'create', '--client-id', 'hostile-name', '--redirect-uri', 'http://localhost:8765/callback', '--name', hostile)).code).toBe(0);
    expect((await cli('apis', 'create', '--audience', `https://api.example.com/${hostile}`)).code).toBe(0);
    const user = await createUser(server.services);
    const client = await createClient(server.services);
    await signIn(await discoverRp(server.issuer, client.clientId, client.clientSecret!), createBrowser(), { email: user.email, password, consent: true });

    for (const argv of [['users', 'list'], ['clients', 'list'], ['apis', 'list'], ['users', 'sessions', '--email', user.email], ['keys', 'list'], ['events']]) {
      const shown = await cli(...argv);
      expect(shown.code, argv.join(' ')).toBe(0);
      expect(shown.stdout, argv.join(' ')).not.toMatch(raw);
      expect((await cli(...argv, '--json')).stdout, argv.join(' ')).not.toMatch(raw);
    }
    expect((await cli('users', 'list')).stdout).toContain(escaped);
    expect((await cli('clients', 'list')).stdout).toContain(escaped);
    expect((await cli('apis', 'list')).stdout).toContain(escaped);
  });

  it('escapes what an error line echoes', async () => {
    for (const argv of [
      ['users', 'create', '--email', hostile, '--password', password],
      ['users', 'disable', '--email', hostile],
      ['events', '--since', hostile],
      ['apis', 'create', '--audience', 'https://api.example.com', '--scopes', hostile],
      ['users', hostile],
      ['users', 'list', `--${hostile}`],
    ]) {
      const result = await cli(...argv);
      expect(result.code, argv.join(' ')).toBeGreaterThan(0);
      expect(result.stderr.split('\n'), argv.join(' ')).toHaveLength(1);
      expect(result.stderr, argv.join(' ')).not.toMatch(raw);
      expect(result.stderr, argv.join(' ')).toContain(escaped.slice(0, 20));
    }
  });
});
