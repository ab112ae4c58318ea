import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendHttp, type RawAnswer } from './support/raw-http.js';
import { startTestServer, type TestServer } from './support/server.js';

// Discovery and the JWKS are answered in front of Koa once the whole stack has answered a plain GET for them
// (src/oidc/static-documents.ts). These tests hold that path to the same answers as the stack, and show that no
// request the stack would refuse or answer otherwise is taken by it.
const paths = ['/.well-known/openid-configuration', '/.well-known/jwks.json'];

/** The headers that are the same for every answer to the request (not the moment's Date, nor the connection's). */
function stable(answer: RawAnswer) {
  const { date: _date, connection: _connection, 'keep-alive': _keepAlive, ...headers } = answer.headers;
  return { status: answer.status, headers, body: answer.body };
}

describe('discovery and the JWKS answered in front of Koa', () => {
  let server: TestServer;
  let host: string;
  const get = (target: string, headers: Record<string, string> = {}) => sendHttp(server.port, { target, headers: { host, ...headers } });

  beforeAll(async () => {
    server = await startTestServer();
    host = new URL(server.issuer).host;
    // The first GET goes through oidc-provider, the second is answered from the middleware's cache and recorded.
    for (const path of paths) for (let i = 0; i < 2; i++) await get(path);
  });
  afterAll(() => server.close());

  for (const path of paths) {
    it(`answers ${path} with the same status, headers and bytes as the middleware stack`, async () => {
      const fast = await get(path);
      // A query string sends the request through Koa, whose answer does not depend on it.
      const throughKoa = await get(`${path}?through=koa`);
      expect(fast.status).toBe(200);
      expect(stable(fast)).toEqual(stable(throughKoa));
      expect(fast.headers['content-security-policy']).toContain("default-src 'none'");
      expect(fast.headers['x-content-type-options']).toBe('nosniff');
      expect(fast.headers['access-control-allow-origin']).toBe('*');
      expect(fast.headers.etag).toMatch(/^"/);
    });
  }

  it('still refuses another host, answers If-None-Match with 304 and HEAD without a body', async () => {
    const [discovery] = paths;
    expect((await get(discovery, { host: 'evil.example' })).status).toBe(421);
    expect((await sendHttp(server.port, { target: discovery, headers: { host: `127.0.0.1:${server.port}` } })).status).toBe(421);
    const { etag } = (await get(discovery)).headers;
    expect((await get(discovery, { 'if-none-match': etag as string })).status).toBe(304);
    const head = await sendHttp(server.port, { method: 'HEAD', target: discovery, headers: { host } });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('serves the new JWKS after a key rotation (each provider built records its own answers)', async () => {
    const before = await get(paths[1]);
    const { rotateSigningKey } = await import('../src/signing-keys.js');
    await rotateSigningKey(server.config.keysDir);
    expect(await server.reloadSigningKeys()).toBe(true);
    for (let i = 0; i < 3; i++) {
      const after = await get(paths[1]);
      expect(after.status).toBe(200);
      expect(after.headers.etag).not.toBe(before.headers.etag);
      expect((JSON.parse(after.body) as { keys: unknown[] }).keys).toHaveLength((JSON.parse(before.body) as { keys: unknown[] }).keys.length + 1);
    }
  });
});

describe('on an https issuer behind a TLS-terminating proxy', () => {
  let server: TestServer;
  const host = 'id.example.test';
  beforeAll(async () => {
    server = await startTestServer({ issuer: `https://${host}`, trustedProxyCount: 1 });
  });
  afterAll(() => server.close());

  it('records answers to requests that came over https, and still refuses one that did not', async () => {
    const [discovery] = paths;
    const viaProxy = { host, 'x-forwarded-proto': 'https' };
    for (let i = 0; i < 3; i++) expect((await sendHttp(server.port, { target: discovery, headers: viaProxy })).status).toBe(200);
    const plain = await sendHttp(server.port, { target: discovery, headers: { host } });
    expect(plain.status).toBe(403);
    expect(plain.body).toContain('HTTPS required');
    const spoofedOrder = await sendHttp(server.port, { target: discovery, headers: { host, 'x-forwarded-proto': 'http, https' } });
    expect(spoofedOrder.status).toBe(403);
  });
});

describe('what is never sent again', () => {
  it('does not record an answer that sets a cookie: each caller gets its own', async () => {
    const { default: Koa } = await import('koa');
    const http = await import('node:http');
    const { answerInFrontOfKoa, createStaticDocuments } = await import('../src/oidc/static-documents.js');
    const app = new Koa();
    let issued = 0;
    // A middleware in front of the documents that sets a cookie per request (none of Latchkey's does).
    app.use(async (ctx, next) => {
      ctx.cookies.set('visitor', String(++issued));
      await next();
    });
    const documents = createStaticDocuments({ documents: { '/doc': { maxAgeSeconds: 60 } }, issuer: 'http://docs.test', trustsProxy: false });
    app.use(documents.middleware);
    app.use((ctx) => {
      ctx.body = { document: true };
    });
    answerInFrontOfKoa(app as unknown as Parameters<typeof answerInFrontOfKoa>[0], documents.answer);
    const server = http.createServer(app.callback()).listen(0);
    try {
      await new Promise((resolve) => server.once('listening', resolve));
      const port = (server.address() as { port: number }).port;
      const cookies: string[] = [];
      for (let i = 0; i < 4; i++) {
        const answer = await sendHttp(port, { target: '/doc', headers: { host: 'docs.test' } });
        expect(answer.status).toBe(200);
        cookies.push(String(answer.headers['set-cookie']));
      }
      expect(cookies.map((cookie) => /visitor=(\d+)/.exec(cookie)?.[1])).toEqual(['1', '2', '3', '4']);
    } finally {
      server.close();
    }
  });
});
