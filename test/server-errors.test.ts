import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.js';

const lines: string[] = [];
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ logLevel: 'debug' }, undefined, { logDestination: { write: (line: string) => void lines.push(line) } });
});
afterAll(() => server.close());

/** Sends raw bytes and resolves with the status line once the server closes the connection. */
function sendRaw(request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const socket = net.connect(server.port, '127.0.0.1', () => socket.end(request));
    socket.on('data', (chunk) => { answer += chunk.toString('latin1'); });
    socket.on('error', reject);
    socket.on('close', () => resolve(answer.split('\r\n')[0]));
  });
}

describe('errors a client causes', () => {
  it('logs a request body cut short as a client fault through the JSON log, with no stack trace', async () => {
    const status = await sendRaw(`POST /token HTTP/1.1\r\nHost: ${new URL(server.issuer).host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=x`);
    expect(status).toMatch(/^HTTP\/1\.1 4\d\d/);
    await expect.poll(() => lines.some((line) => line.includes('"event":"http_error"'))).toBe(true);
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.event === 'http_error');
    for (const line of logged) {
      expect(line.level).toBe(20); // debug: nothing an operator must act on
      expect(line.stack).toBeUndefined();
    }
    expect((await fetch(`${server.issuer}/healthz`)).status).toBe(200);
  });
});
