import net from 'node:net';
import fc from 'fast-check';
import * as oidc from 'openid-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBrowser, textOf, type Browser } from './support/browser.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, postLogoutRedirectUri, redirectUri, signIn } from './support/rp.js';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * Malformed input at every endpoint: a 4xx with an OAuth error JSON (protocol endpoints) or our readable HTML error
 * page (browser endpoints), never a 5xx, never a stack trace, and the server keeps serving. A table of hand-picked
 * inputs, then fast-check properties with a fixed seed (the same requests on every run).
 */

let server: TestServer;
let base: string; // the issuer: Latchkey answers no other host (raw requests connect to 127.0.0.1 and name it in Host)
let host: string;
let rp: oidc.Configuration;
let clientId: string;
let basicAuth: string;
let userEmail: string;
let endpoints: {
  authorization: string; token: string; userinfo: string; introspection: string; revocation: string;
  endSession: string; par: string; jwks: string;
};

beforeAll(async () => {
  server = await startTestServer();
  base = server.issuer;
  host = new URL(server.issuer).host;
  const client = await createClient(server.services);
  clientId = client.clientId;
  basicAuth = `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`;
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
  userEmail = (await createUser(server.services)).email;
  // Paths from discovery, not guessed.
  const discovery = await (await fetch(`${base}/.well-known/openid-configuration`)).json() as Record<string, string>;
  const pathOf = (name: string) => new URL(discovery[name]).pathname;
  endpoints = {
    authorization: pathOf('authorization_endpoint'),
    token: pathOf('token_endpoint'),
    userinfo: pathOf('userinfo_endpoint'),
    introspection: pathOf('introspection_endpoint'),
    revocation: pathOf('revocation_endpoint'),
    endSession: pathOf('end_session_endpoint'),
    par: pathOf('pushed_authorization_request_endpoint'),
    jwks: pathOf('jwks_uri'),
  };
});
afterAll(() => server?.close());

// The server runs in this process: a prototype polluted by a request body would show up here.
afterEach(async () => {
  expect(Object.keys(Object.prototype)).toEqual([]);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  await expectStillServing();
});

async function expectStillServing() {
  const discovery = await fetch(`${base}/.well-known/openid-configuration`);
  expect(discovery.status).toBe(200);
  await discovery.arrayBuffer();
  const health = await fetch(`${base}/healthz`);
  expect(health.status).toBe(200);
  await health.arrayBuffer();
}

// ---------------------------------------------------------------------------------------------------------------
// Sending and judging one request

type Answer = { status: number; type: string; body: string; location: string | null };

const form = { 'content-type': 'application/x-www-form-urlencoded' };
const asBrowser = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

async function answerOf(response: Response): Promise<Answer> {
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: await response.text(), location: response.headers.get('location') };
}

async function send(path: string, init: RequestInit = {}): Promise<Answer> {
  return answerOf(await fetch(`${base}${path}`, { redirect: 'manual', ...init }));
}

const post = (path: string, body: BodyInit | null, headers: Record<string, string> = form) => send(path, { method: 'POST', body, headers });

/** An answer read off a raw socket: complete once its Content-Length is in (or, without one, at the close). */
function parseRaw(data: Buffer, isClosed: boolean): Answer | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const head = data.subarray(0, end).toString('latin1');
  const header = (name: string) => new RegExp(`^${name}: (.*)$`, 'im').exec(head)?.[1].trim() ?? null;
  const length = header('content-length');
  const body = data.subarray(end + 4);
  if (length === null ? !isClosed : body.length < Number(length)) return undefined;
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)![1]),
    type: header('content-type') ?? '',
    body: body.subarray(0, length === null ? body.length : Number(length)).toString('utf8'),
    location: header('location'),
  };
}

/**
 * Writes `head` and then `body` on a raw socket and returns the answer as soon as it is complete. A server that stops
 * reading an upload answers first; the rest of the upload may then meet a reset, which fetch would report instead.
 */
function sendRaw(head: string, body: Buffer[], endAfterWriting = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, '127.0.0.1');
    let received = Buffer.alloc(0);
    const settle = (isClosed: boolean) => {
      const answer = parseRaw(received, isClosed);
      if (answer) {
        resolve(answer);
        socket.destroy();
      } else if (isClosed) {
        reject(new Error(`no complete HTTP answer: ${JSON.stringify(received.toString('latin1').slice(0, 200))}`));
      }
    };
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      settle(false);
    });
    socket.on('close', () => settle(true));
    socket.on('error', () => undefined); // a reset after the answer; `close` follows
    socket.write(head);
    const pump = () => {
      while (body.length > 0) if (!socket.write(body.shift()!)) return void socket.once('drain', pump);
      if (endAfterWriting) socket.end();
    };
    pump();
  });
}

/** A body that arrives in chunks without a Content-Length (Transfer-Encoding: chunked): "aaaa…", one endless name. */
function postChunked(path: string, totalBytes: number, accept = '*/*'): Promise<Answer> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const chunks = Array.from({ length: Math.ceil(totalBytes / chunk.length) }, () => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]));
  return sendRaw(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nAccept: ${accept}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n`, [...chunks, Buffer.from('0\r\n\r\n')]);
}

/** Announces 100 bytes, sends 10 and half-closes: the body ends early. */
function postShort(path: string): Promise<Answer> {
  return sendRaw(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n`, [Buffer.from('grant_type')], true);
}

/** The body tells nothing about the code: no stack frames, no source or dependency paths, no error dumps. */
function expectNoLeak(answer: Answer) {
  expect(answer.body).not.toContain('    at ');
  expect(answer.body).not.toMatch(/\bat .+:\d+:\d+\)?$/m);
  expect(answer.body).not.toContain('/src/');
  expect(answer.body).not.toContain('node_modules');
  expect(answer.body).not.toMatch(/\b[A-Za-z]*Error: /);
  expect(answer.body).not.toMatch(/\b(knex|sqlite3?|postgres(ql)?)\b|select \* from|insert into/i);
}

/** RFC 6749 §5.2: JSON with an `error` code from its restricted character set. */
function expectOAuthError(answer: Answer, status: number, error?: string) {
  expect(answer.status).toBe(status);
  expect(answer.type).toMatch(/^application\/json/);
  const json = JSON.parse(answer.body) as { error?: unknown; error_description?: unknown };
  expect(json.error).toMatch(/^[\x20\x21\x23-\x5B\x5D-\x7E]+$/);
  if (error) expect(json.error).toBe(error);
  if (json.error_description !== undefined) expect(typeof json.error_description).toBe('string');
}

/** Our error page (views/error.pug) or a hosted page showing its `.error` message. */
function expectErrorPage(answer: Answer, status: number) {
  expect(answer.status).toBe(status);
  expect(answer.type).toMatch(/^text\/html/);
  expect(textOf(answer.body, '.error')).toBeTruthy();
}

/** RFC 6749 §4.1.2.1: with a valid client and redirect_uri, the error goes back to the app. */
function expectRedirectedError(answer: Answer, error: string) {
  expect(answer.status).toBe(303);
  const location = new URL(answer.location!);
  expect(location.href.startsWith(redirectUri)).toBe(true);
  expect(location.searchParams.get('error')).toBe(error);
}

type Expectation =
  | { oauth: number; error?: string }
  | { page: number }
  | { redirectedError: string }
  | { status: number; emptyBody?: true; check?: (answer: Answer) => void };

function judge(answer: Answer, expectation: Expectation) {
  expectNoLeak(answer);
  if ('oauth' in expectation) expectOAuthError(answer, expectation.oauth, expectation.error);
  else if ('page' in expectation) expectErrorPage(answer, expectation.page);
  else if ('redirectedError' in expectation) expectRedirectedError(answer, expectation.redirectedError);
  else {
    expect(answer.status).toBe(expectation.status);
    if (expectation.emptyBody) expect(answer.body).toBe('');
    expectation.check?.(answer);
  }
}

type Case = { name: string; send: () => Promise<Answer>; expect: Expectation };

const kb = (n: number) => 'a'.repeat(n * 1024);
const mb = 1024 * 1024;
const bytes = (...parts: Array<string | number[]>) => Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : Buffer.from(part))));
const challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
/** A well-formed authorization request for our client; cases spoil one part of it. */
const authQuery = (extra = '') =>
  `?client_id=${clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(redirectUri)}&code_challenge=${challenge}&code_challenge_method=S256${extra}`;

// ---------------------------------------------------------------------------------------------------------------
// Hand-picked inputs
//
// Size limits, and who enforces them:
// - protocol endpoints: oidc-provider reads at most 56 KiB of body (LIMIT in lib/shared/selective_body.js) and answers
//   a larger one, or one it cannot parse, with 400 invalid_request "failed to parse the request body" (not 413);
// - hosted forms: our body parser's formLimit of 16 KiB (src/interaction/routes.ts): 413 and the error page;
// - the request head (request line with the query, and headers): Node's 16 KiB maxHeaderSize: a bare 431.

const tokenCases: Case[] = [
  { name: 'an empty body', send: () => post(endpoints.token, null, {}), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'a form body without a content-type', send: () => post(endpoints.token, Buffer.from('grant_type=client_credentials'), {}), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'JSON instead of a form', send: () => post(endpoints.token, '{"grant_type":"client_credentials"}', { 'content-type': 'application/json', authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'JSON with prototype pollution keys', send: () => post(endpoints.token, '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}', { 'content-type': 'application/json', authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'form keys __proto__ and constructor[prototype]', send: () => post(endpoints.token, '__proto__[polluted]=1&__proto__=x&constructor[prototype][polluted]=1&grant_type=refresh_token&refresh_token=x', { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_grant' } },
  { name: 'text/plain', send: () => post(endpoints.token, 'grant_type=client_credentials', { 'content-type': 'text/plain', authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'multipart/form-data', send: () => send(endpoints.token, { method: 'POST', body: (() => { const data = new FormData(); data.set('grant_type', 'client_credentials'); return data; })(), headers: { authorization: basicAuth } }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'grant_type twice', send: () => post(endpoints.token, 'grant_type=client_credentials&grant_type=authorization_code', { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'client_id twice with different values', send: () => post(endpoints.token, `grant_type=client_credentials&client_id=${clientId}&client_id=other&client_secret=x`), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'scope as an array (scope[]=x)', send: () => post(endpoints.token, 'grant_type=refresh_token&refresh_token=x&scope[]=openid&scope[]=email', { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_grant' } },
  { name: 'raw bytes 0xff 0xfe and an overlong "/" (0xc0 0xaf)', send: () => post(endpoints.token, bytes('grant_type=', [0xff, 0xfe, 0xc0, 0xaf], '&code=', [0xc0, 0x80]), { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'unsupported_grant_type' } },
  { name: 'a percent-encoded lone surrogate (%ED%A0%80) and overlong %C0%AF', send: () => post(endpoints.token, 'grant_type=authorization_code&code=%ED%A0%80%C0%AF&redirect_uri=%ED%A0%80&code_verifier=%ED%A0%80', { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_grant' } },
  { name: 'invalid percent-encoding (%zz, %)', send: () => post(endpoints.token, 'grant_type=%zz&client_id=%&client_secret=%', form), expect: { oauth: 401, error: 'invalid_client' } },
  { name: 'a NUL byte in client_id', send: () => post(endpoints.token, 'grant_type=client_credentials&client_id=app%00&client_secret=x'), expect: { oauth: 401, error: 'invalid_client' } },
  { name: 'a NUL byte in an authorization code', send: () => post(endpoints.token, `grant_type=authorization_code&code=abc%00def&redirect_uri=${encodeURIComponent(redirectUri)}&code_verifier=${'v'.repeat(43)}`, { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_grant' } },
  { name: 'a NUL byte in a refresh token', send: () => post(endpoints.token, 'grant_type=refresh_token&refresh_token=abc%00def', { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_grant' } },
  { name: 'a 40 KB code (under the body limit)', send: () => post(endpoints.token, `grant_type=authorization_code&code=${kb(40)}&redirect_uri=x&code_verifier=${'v'.repeat(43)}`, { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_grant' } },
  { name: 'a 100 KB parameter value (over the 56 KiB body limit)', send: () => post(endpoints.token, `grant_type=client_credentials&scope=${kb(100)}`, { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'a 2 MB body with a Content-Length', send: () => post(endpoints.token, `grant_type=${'a'.repeat(2 * mb)}`, { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'a 2 MB chunked body without a Content-Length', send: () => postChunked(endpoints.token, 2 * mb), expect: { oauth: 400, error: 'invalid_request' } },
  // Node's HTTP parser answers this one itself, before any middleware: a bare 400.
  { name: 'a body shorter than its Content-Length', send: () => postShort(endpoints.token), expect: { status: 400, emptyBody: true } },
  { name: 'Authorization: Basic !!!', send: () => post(endpoints.token, 'grant_type=client_credentials', { ...form, authorization: 'Basic !!!' }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'Authorization: Basic with base64 without a colon', send: () => post(endpoints.token, 'grant_type=client_credentials', { ...form, authorization: `Basic ${Buffer.from(clientId).toString('base64')}` }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'Authorization: Basic with invalid percent-encoding inside', send: () => post(endpoints.token, 'grant_type=client_credentials', { ...form, authorization: `Basic ${Buffer.from('%zz:%').toString('base64')}` }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'Authorization: Basic with a percent-encoded NUL in the client_id', send: () => post(endpoints.token, 'grant_type=client_credentials', { ...form, authorization: `Basic ${Buffer.from(`${clientId}%00:secret`).toString('base64')}` }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'Authorization: Basic with a raw NUL in the client_id', send: () => post(endpoints.token, 'grant_type=client_credentials', { ...form, authorization: `Basic ${Buffer.from(`${clientId}\0:secret`).toString('base64')}` }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'Authorization: Basic and client_secret_post at once', send: () => post(endpoints.token, `grant_type=client_credentials&client_id=${clientId}&client_secret=x`, { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'a 10 KB Authorization header', send: () => post(endpoints.token, 'grant_type=client_credentials', { ...form, authorization: `Basic ${'A'.repeat(10 * 1024)}` }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'PUT instead of POST', send: () => send(endpoints.token, { method: 'PUT', body: 'grant_type=client_credentials', headers: form }), expect: { status: 404 } },
];

const protocolCases: Case[] = [
  { name: 'userinfo: Bearer with spaces inside the token', send: () => send(endpoints.userinfo, { headers: { authorization: 'Bearer a b c' } }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'userinfo: "Bearer" and nothing else', send: () => send(endpoints.userinfo, { headers: { authorization: 'Bearer' } }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'userinfo: a 10 KB bearer token', send: () => send(endpoints.userinfo, { headers: { authorization: `Bearer ${kb(10)}` } }), expect: { oauth: 401, error: 'invalid_token' } },
  { name: 'userinfo: a token in the header and in the body', send: () => post(endpoints.userinfo, 'access_token=x', { ...form, authorization: 'Bearer y' }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'userinfo: a NUL byte in a form-posted access token', send: () => post(endpoints.userinfo, 'access_token=abc%00def'), expect: { oauth: 401, error: 'invalid_token' } },
  { name: 'userinfo: access_token twice', send: () => post(endpoints.userinfo, 'access_token=a&access_token=b'), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'introspection: no client authentication', send: () => post(endpoints.introspection, 'token=x'), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'introspection: JSON', send: () => post(endpoints.introspection, '{"token":"x"}', { 'content-type': 'application/json', authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'introspection: token twice', send: () => post(endpoints.introspection, 'token=a&token=b', { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'introspection: a missing token', send: () => post(endpoints.introspection, 'token_type_hint=access_token', { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'introspection: a NUL byte in the token', send: () => post(endpoints.introspection, 'token=abc%00def', { ...form, authorization: basicAuth }), expect: { status: 200, check: (answer) => expect(JSON.parse(answer.body)).toEqual({ active: false }) } },
  { name: 'introspection: a 100 KB body', send: () => post(endpoints.introspection, `token=${kb(100)}`, { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'revocation: raw 0xff 0xfe bytes', send: () => post(endpoints.revocation, bytes('token=', [0xff, 0xfe, 0x00]), { ...form, authorization: basicAuth }), expect: { status: 200 } },
  { name: 'revocation: a NUL byte in the token', send: () => post(endpoints.revocation, 'token=abc%00def&token_type_hint=refresh_token', { ...form, authorization: basicAuth }), expect: { status: 200 } },
  { name: 'revocation: an unknown token_type_hint (ignored, RFC 7009 §2.1)', send: () => post(endpoints.revocation, 'token=x&token_type_hint=%zz', { ...form, authorization: basicAuth }), expect: { status: 200 } },
  { name: 'revocation: a 2 MB body', send: () => post(endpoints.revocation, `token=${'a'.repeat(2 * mb)}`, { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'PAR: a NUL byte in the resource indicator', send: () => post(endpoints.par, `client_id=${clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(redirectUri)}&code_challenge=${challenge}&code_challenge_method=S256&resource=https%3A%2F%2Fapi.example%2F%00`, { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'invalid_target' } },
  { name: 'PAR: a request_uri inside a pushed request', send: () => post(endpoints.par, `client_id=${clientId}&request_uri=urn:x`, { ...form, authorization: basicAuth }), expect: { oauth: 400, error: 'request_uri_not_supported' } },
  { name: 'end session confirm: no logout in progress', send: () => post(`${endpoints.endSession}/confirm`, 'xsrf=%ff&logout=yes'), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'end session confirm: JSON', send: () => post(`${endpoints.endSession}/confirm`, '{"__proto__":{"polluted":1}}', { 'content-type': 'application/json' }), expect: { oauth: 400, error: 'invalid_request' } },
  { name: 'discovery with garbage in the query', send: () => send('/.well-known/openid-configuration?%zz=%&a[]=%00'), expect: { status: 200 } },
  { name: 'discovery by POST', send: () => post('/.well-known/openid-configuration', 'a=b'), expect: { status: 404 } },
  { name: 'JWKS with a bogus If-None-Match', send: () => send(`${endpoints.jwks}?%zz`, { headers: { 'if-none-match': `"${'x'.repeat(8000)}", W/, *"` } }), expect: { status: 200 } },
  { name: 'an unknown path with invalid percent-encoding', send: () => send('/%zz/%'), expect: { status: 404 } },
];

const browserCases: Case[] = [
  { name: 'authorization: no parameters', send: () => send(endpoints.authorization, { headers: asBrowser }), expect: { page: 400 } },
  { name: 'authorization: client_id twice with different values', send: () => send(`${endpoints.authorization}${authQuery(`&client_id=other`)}`, { headers: asBrowser }), expect: { page: 400 } },
  { name: 'authorization: scope as an array (scope[]=x), which is just an unknown parameter', send: () => send(`${endpoints.authorization}${authQuery().replace('scope=openid', 'scope[]=openid')}`, { headers: asBrowser }), expect: { status: 303, check: (answer) => expect(answer.location).toMatch(/^\/interaction\//) } },
  { name: 'authorization: response_type twice', send: () => send(`${endpoints.authorization}${authQuery('&response_type=code')}`, { headers: asBrowser }), expect: { redirectedError: 'invalid_request' } },
  { name: 'authorization: invalid percent-encoding', send: () => send(`${endpoints.authorization}?client_id=%zz&scope=%&redirect_uri=%E0%A4%A`, { headers: asBrowser }), expect: { page: 400 } },
  { name: 'authorization: a lone surrogate and overlong bytes', send: () => send(`${endpoints.authorization}${authQuery('&state=%ED%A0%80%C0%AF%FF%FE')}`.replace('scope=openid', 'scope=%ED%A0%80'), { headers: asBrowser }), expect: { redirectedError: 'invalid_scope' } },
  { name: 'authorization: a NUL byte in client_id', send: () => send(`${endpoints.authorization}?client_id=app%00&response_type=code&scope=openid`, { headers: asBrowser }), expect: { page: 400 } },
  { name: 'authorization: a NUL byte in the resource indicator', send: () => send(`${endpoints.authorization}${authQuery('&resource=https%3A%2F%2Fapi.example%2F%00')}`, { headers: asBrowser }), expect: { redirectedError: 'invalid_target' } },
  { name: 'authorization: a NUL byte in request_uri', send: () => send(`${endpoints.authorization}?client_id=${clientId}&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Aab%00c`, { headers: asBrowser }), expect: { redirectedError: 'invalid_request_uri' } },
  { name: 'authorization: a 2 KB state and redirect_uri twice', send: () => send(`${endpoints.authorization}${authQuery(`&state=${kb(2)}&redirect_uri=x`)}`, { headers: asBrowser }), expect: { redirectedError: 'invalid_request' } },
  { name: 'authorization: a 10 KB state (fits in the request head, not in ANONYMOUS_REQUEST_MAX_BYTES)', send: () => send(`${endpoints.authorization}${authQuery(`&state=${kb(10)}`)}`, { headers: asBrowser }), expect: { page: 400 } },
  { name: 'authorization: an unregistered redirect_uri with a NUL byte', send: () => send(`${endpoints.authorization}${authQuery().replace('redirect_uri=', 'redirect_uri=https%3A%2F%2Fevil.example%2F%00')}`, { headers: asBrowser }), expect: { page: 400 } },
  { name: 'authorization: a 60 KB query (over Node\'s 16 KiB header limit)', send: () => send(`${endpoints.authorization}${authQuery(`&state=${kb(60)}`)}`, { headers: asBrowser }), expect: { status: 431, emptyBody: true } },
  { name: 'authorization: POST (a 303 to the same request as a GET, docs/conformance.md)', send: () => post(endpoints.authorization, `client_id=${clientId}`, { ...form, ...asBrowser }), expect: { status: 303, check: (answer) => expect(answer.location).toBe(`auth?client_id=${clientId}`) } },
  { name: 'authorization: POST with a JSON body', send: () => post(endpoints.authorization, '{"client_id":1}', { 'content-type': 'application/json', ...asBrowser }), expect: { page: 400 } },
  { name: 'end session: id_token_hint twice', send: () => send(`${endpoints.endSession}?id_token_hint=a&id_token_hint=b`, { headers: asBrowser }), expect: { page: 400 } },
  { name: 'end session: a malformed id_token_hint', send: () => send(`${endpoints.endSession}?id_token_hint=%ff.%00.%zz`, { headers: asBrowser }), expect: { page: 400 } },
  { name: 'end session: a NUL byte in client_id', send: () => send(`${endpoints.endSession}?client_id=app%00`, { headers: asBrowser }), expect: { page: 400 } },
  { name: 'end session: a javascript: post_logout_redirect_uri without client_id', send: () => send(`${endpoints.endSession}?post_logout_redirect_uri=javascript%3Aalert(1)`, { headers: asBrowser }), expect: { status: 200, check: (answer) => expect(answer.body).not.toContain('javascript:') } },
  { name: 'interaction: an unknown uid', send: () => send('/interaction/unknown-uid', { headers: asBrowser }), expect: { page: 400 } },
  { name: 'interaction: a uid with invalid percent-encoding', send: () => send('/interaction/%zz%E0%A4%A', { headers: asBrowser }), expect: { page: 400 } },
  { name: 'interaction: a uid with a NUL byte', send: () => send('/interaction/ab%00cd', { headers: asBrowser }), expect: { page: 400 } },
  { name: 'interaction: a 10 KB uid', send: () => send(`/interaction/${kb(10)}`, { headers: asBrowser }), expect: { page: 400 } },
  { name: 'interaction: a login post to an unknown uid', send: () => post('/interaction/unknown-uid/login', 'email=a&password=b', { ...form, ...asBrowser }), expect: { page: 400 } },
  { name: 'interaction: a 2 MB chunked body to an unknown uid', send: () => postChunked('/interaction/unknown-uid/login', 2 * mb, asBrowser.accept), expect: { page: 413 } },
  { name: 'healthz: POST', send: () => post('/healthz', 'x=1'), expect: { status: 404 } },
  { name: 'stylesheet: a bogus If-None-Match', send: () => send('/assets/latchkey.css?%zz', { headers: { 'if-none-match': 'W/"\u00ff' } }), expect: { status: 200 } },
  { name: 'favicon: a body and garbage query', send: () => send('/favicon.ico?%00=%zz', { method: 'GET', headers: { 'content-type': 'application/json' } }), expect: { status: 204 } },
];

describe('the token endpoint, hand-picked malformed requests', () => {
  it.each(tokenCases)('answers $name with an OAuth error', async ({ send: sendCase, expect: expectation }) => {
    judge(await sendCase(), expectation);
  });
});

describe('the other protocol endpoints, hand-picked malformed requests', () => {
  it.each(protocolCases)('answers $name without a 5xx', async ({ send: sendCase, expect: expectation }) => {
    judge(await sendCase(), expectation);
  });
});

describe('the browser endpoints, hand-picked malformed requests', () => {
  it.each(browserCases)('answers $name with a readable page or a redirect to the app', async ({ send: sendCase, expect: expectation }) => {
    judge(await sendCase(), expectation);
  });

  it('answers malformed HTTP itself (raw bytes and a NUL in the request head) with a 400', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(server.port, '127.0.0.1');
      let received = '';
      socket.on('data', (chunk) => { received += chunk.toString('latin1'); });
      socket.on('end', () => resolve(received));
      socket.on('error', reject);
      socket.write(bytes('GET /auth?client_id=', [0xff, 0xfe], ` HTTP/1.1\r\nHost: ${host}\r\nX-Bad: a`, [0x00], 'b\r\n\r\n'));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(reply).not.toContain('    at ');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The hosted forms, with a real interaction (cookie + uid + CSRF token)

type Interaction = { browser: Browser; uid: string; csrf: string; post(step: string, body: BodyInit | null, headers?: Record<string, string>): Promise<Answer> };

/** Opens the login page for a fresh authorization request, as a browser would. */
async function openInteraction(): Promise<Interaction> {
  const browser = createBrowser();
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: redirectUri, scope: 'openid email', code_challenge: challenge, code_challenge_method: 'S256', state: 's',
  });
  const page = await browser.follow(url.href);
  const uid = /\/interaction\/([^/?#]+)/.exec(page.url)![1];
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)![1];
  return {
    browser, uid, csrf,
    async post(step, body, headers = form) {
      return answerOf(await browser.request(`${server.issuer}/interaction/${uid}/${step}`, { method: 'POST', body, headers: { ...asBrowser, ...headers } }));
    },
  };
}

/** The login page shown again with the one generic message: the attempt was read and refused, nothing broke. */
function expectLoginRefused(answer: Answer) {
  expectNoLeak(answer);
  expect(answer.status).toBe(200);
  expect(textOf(answer.body, '.error')).toBe('Incorrect email or password.');
}

describe('the login form with a real interaction', () => {
  let login: Interaction;
  beforeAll(async () => {
    login = await openInteraction();
  });

  const formCases: Array<{ name: string; body: () => BodyInit; headers?: Record<string, string>; expect: Expectation | 'refused' }> = [
    { name: 'an empty body', body: () => '', expect: { page: 400 } },
    { name: 'JSON carrying the right CSRF token', body: () => JSON.stringify({ csrf: login.csrf, email: userEmail, password }), headers: { 'content-type': 'application/json' }, expect: { page: 400 } },
    { name: 'JSON with __proto__ carrying the CSRF token', body: () => `{"__proto__":{"csrf":"${login.csrf}","polluted":1},"email":"a@b.c","password":"x"}`, headers: { 'content-type': 'application/json' }, expect: { page: 400 } },
    { name: 'a form with __proto__[csrf] (prototype pollution)', body: () => `__proto__[csrf]=${login.csrf}&__proto__[polluted]=1&constructor[prototype][csrf]=${login.csrf}&email=a%40b.c&password=x`, expect: { page: 400 } },
    { name: 'text/plain', body: () => `csrf=${login.csrf}&email=a&password=b`, headers: { 'content-type': 'text/plain' }, expect: { page: 400 } },
    { name: 'multipart/form-data', body: () => { const data = new FormData(); data.set('csrf', login.csrf); data.set('email', 'a@b.c'); data.set('password', 'x'); return data; }, headers: {}, expect: { page: 400 } },
    { name: 'no content-type', body: () => Buffer.from(`csrf=${login.csrf}&email=a&password=b`), headers: {}, expect: { page: 400 } },
    { name: 'the CSRF token twice', body: () => `csrf=${login.csrf}&csrf=${login.csrf}&email=a%40b.c&password=x`, expect: { page: 400 } },
    { name: 'the email twice', body: () => `csrf=${login.csrf}&email=${encodeURIComponent(userEmail)}&email=b%40b.c&password=x`, expect: { page: 400 } },
    { name: 'the password as an array', body: () => `csrf=${login.csrf}&email=a%40b.c&password[]=x&password[]=y`, expect: { page: 400 } },
    { name: 'the email as an object', body: () => `csrf=${login.csrf}&email[a][b]=c&password=x`, expect: { page: 400 } },
    { name: 'an email of 300 KB', body: () => `csrf=${login.csrf}&email=${kb(300)}&password=x`, expect: { page: 413 } },
    { name: 'a password of 1 MB', body: () => `csrf=${login.csrf}&email=a%40b.c&password=${'p'.repeat(mb)}`, expect: { page: 413 } },
    { name: 'an email of 15 KB (under the form limit)', body: () => `csrf=${login.csrf}&email=${kb(15)}%40b.c&password=x`, expect: 'refused' },
    { name: 'a NUL byte in the email', body: () => `csrf=${login.csrf}&email=nul%00user%40example.com&password=x`, expect: 'refused' },
    { name: 'a NUL byte in the password', body: () => `csrf=${login.csrf}&email=${encodeURIComponent(userEmail)}&password=${encodeURIComponent(password)}%00`, expect: 'refused' },
    { name: 'raw 0xff 0xfe bytes and an overlong NUL', body: () => bytes(`csrf=${login.csrf}&email=`, [0xff, 0xfe, 0xc0, 0x80], '%40b.c&password=', [0xed, 0xa0, 0x80]), expect: 'refused' },
    { name: 'a lone surrogate and overlong encodings, percent-encoded', body: () => `csrf=${login.csrf}&email=%ED%A0%80%40b.c&password=%C0%AF%C0%80`, expect: 'refused' },
    { name: 'invalid percent-encoding', body: () => `csrf=${login.csrf}&email=%zz%40b.c&password=%`, expect: 'refused' },
  ];

  it.each(formCases)('answers $name without a 5xx', async ({ body, headers, expect: expectation }) => {
    const answer = await login.post('login', body(), headers);
    if (expectation === 'refused') expectLoginRefused(answer);
    else judge(answer, expectation);
  });

  it('answers the consent step and a cancel with malformed fields with an error page', async () => {
    judge(await login.post('confirm', `csrf=${login.csrf}&csrf=x`), { page: 400 });
    judge(await login.post('abort', `csrf[]=${login.csrf}`), { page: 400 });
    judge(await login.post('abort', `csrf=${login.csrf}%00`), { page: 400 });
    judge(await login.post('abort', bytes('csrf=', [0xff, 0xfe])), { page: 400 });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Generated inputs: fast-check with a fixed seed, so every run sends the same requests

const seed = 20_240_611;
const runs = 120;

const percentEncode = (data: Uint8Array) => [...data].map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join('');
const loneSurrogates = fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit)), maxLength: 4 });

/** Text of every kind: printable ASCII, control characters (NUL included), any code point, lone surrogates. */
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  loneSurrogates,
);

/**
 * One key or value as it appears on the wire (latin1: one char per byte): text percent-encoded as UTF-8, arbitrary
 * bytes percent-encoded (mostly invalid UTF-8), raw unencoded bytes, broken escapes and bracket syntax, or long.
 */
const wire = fc.oneof(
  { weight: 4, arbitrary: text.map((value) => percentEncode(Buffer.from(value, 'utf8'))) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 24 }).map(percentEncode) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }).map((data) => Buffer.from(data).toString('latin1')) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '%%', '%0', '%00', '%ED%A0%80', '%C0%AF', '%FF%FE', '+', '=', '&&', '[]', '[0]', '[a][b]', '__proto__', 'constructor[prototype]') },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 8 }).map((kib) => 'x'.repeat(kib * 1024)) },
);

/** Parameter lists, duplicates allowed: names the endpoint knows, spoiled names, or anything; values likewise. */
const parameterList = (known: string[]) => {
  const name = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...known) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...known), fc.constantFrom('[]', '[0]', '[__proto__]', '%00', '%5B%5D')).map(([known, suffix]) => known + suffix) },
    { weight: 2, arbitrary: wire },
  );
  return fc.array(fc.tuple(name, wire), { maxLength: 8 }).map((pairs) => pairs.map(([key, value]) => `${key}=${value}`));
};

/**
 * A generated body or query: first, each "leading" parameter three times in four, with a plausible value (our client,
 * its redirect URI, a grant type, …) or a generated one, so requests get past the first checks; then generated ones.
 */
function parameters(leads: Record<string, string[]>, known: string[] = Object.keys(leads)) {
  const leading = Object.entries(leads).map(([name, plausible]) => fc.option(
    (plausible.length > 0 ? fc.oneof(fc.constantFrom(...plausible), wire) : wire).map((value) => `${name}=${value}`),
    { freq: 4, nil: undefined },
  ));
  return fc.tuple(fc.tuple(...leading), parameterList(known)).map(([lead, rest]) => [...lead.filter((pair) => pair !== undefined), ...rest].join('&'));
}

const urlencoded = encodeURIComponent;
const authorizationLeads = (): Record<string, string[]> => ({
  client_id: [clientId], response_type: ['code'], scope: ['openid', 'openid email profile offline_access'],
  redirect_uri: [urlencoded(redirectUri)], code_challenge: [challenge], code_challenge_method: ['S256'],
});
const authorizationParameters = [...Object.keys(authorizationLeads()), 'state', 'nonce', 'prompt', 'max_age', 'login_hint', 'id_token_hint',
  'ui_locales', 'claims', 'request', 'request_uri', 'resource', 'response_mode', 'acr_values'];
const clientParameters = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'];

/** With our client's credentials half of the time, so requests get past client authentication. */
const withClientAuth = fc.boolean().map((isAuthenticated): Record<string, string> => (isAuthenticated ? { ...form, authorization: basicAuth } : form));

/** Status < 500, no leak; a 4xx answers in the endpoint's own format; a redirect goes only where it may. */
function judgeGenerated(answer: Answer, format: 'oauth' | 'page' | 'any') {
  expectNoLeak(answer);
  expect(answer.status).toBeLessThan(500);
  if (answer.status >= 300 && answer.status < 400) {
    const location = new URL(answer.location!, server.issuer);
    const isToTheApp = location.href.startsWith(redirectUri) && location.searchParams.has('error');
    const isToTheLoginPage = location.href.startsWith(`${server.issuer}/interaction/`);
    expect(isToTheApp || isToTheLoginPage, `redirect to ${location.href}`).toBe(true);
  }
  // 404 (no such route) and 431 (request head too large) come from Koa and Node, before any endpoint.
  if (answer.status >= 400 && answer.status !== 404 && answer.status !== 431) {
    if (format === 'oauth') expectOAuthError(answer, answer.status);
    if (format === 'page') expectErrorPage(answer, answer.status);
  }
}

const property = <T>(arbitrary: fc.Arbitrary<T>, check: (value: T) => Promise<void>) =>
  fc.assert(fc.asyncProperty(arbitrary, check), { seed, numRuns: runs });

describe('generated parameters (fast-check, fixed seed)', () => {
  const formEndpoints: Array<[string, () => string, () => fc.Arbitrary<string>]> = [
    ['the token endpoint', () => endpoints.token, () => parameters(
      { grant_type: ['authorization_code', 'refresh_token', 'client_credentials'], code: [], refresh_token: [], code_verifier: [], redirect_uri: [urlencoded(redirectUri)] },
      ['grant_type', 'code', 'redirect_uri', 'code_verifier', 'refresh_token', 'scope', 'resource', ...clientParameters],
    )],
    ['introspection', () => endpoints.introspection, () => parameters({ token: [], token_type_hint: ['access_token', 'refresh_token'] }, ['token', 'token_type_hint', ...clientParameters])],
    ['revocation', () => endpoints.revocation, () => parameters({ token: [], token_type_hint: ['access_token', 'refresh_token'] }, ['token', 'token_type_hint', ...clientParameters])],
    ['pushed authorization requests', () => endpoints.par, () => parameters(authorizationLeads(), [...authorizationParameters, ...clientParameters])],
    ['userinfo (form-posted token)', () => endpoints.userinfo, () => parameters({ access_token: [] }, ['access_token', 'claims'])],
    ['the logout confirmation', () => `${endpoints.endSession}/confirm`, () => parameters({ xsrf: [], logout: ['yes'] })],
  ];

  it.each(formEndpoints)('never fails with a 5xx at %s', async (_name, path, body) => {
    await property(fc.tuple(body(), withClientAuth), async ([generated, headers]) => {
      judgeGenerated(await post(path(), Buffer.from(generated, 'latin1'), headers), 'oauth');
    });
  });

  const queryEndpoints: Array<[string, () => string, () => fc.Arbitrary<string>]> = [
    ['the authorization endpoint', () => endpoints.authorization, () => parameters(authorizationLeads(), authorizationParameters)],
    ['the end session endpoint', () => endpoints.endSession, () => parameters(
      { client_id: [clientId], post_logout_redirect_uri: [urlencoded(postLogoutRedirectUri)], id_token_hint: [] },
      ['id_token_hint', 'post_logout_redirect_uri', 'state', 'client_id', 'logout_hint', 'ui_locales'],
    )],
  ];

  it.each(queryEndpoints)('never fails with a 5xx at %s (query)', async (_name, path, query) => {
    await property(query(), async (generated) => {
      // The URL parser would cut the query at a raw "#" and re-encode raw bytes anyway: send them percent-encoded.
      const encoded = generated.replace(/[^\x21-\x7e]|#/g, (char) => percentEncode(Buffer.from(char, 'latin1')));
      judgeGenerated(await send(`${path()}?${encoded}`, { headers: asBrowser }), 'page');
    });
  });

  it('never fails with a 5xx at an interaction page with a generated uid', async () => {
    await property(wire, async (uid) => {
      const path = `/interaction/${uid.replace(/[^\x21-\x7e]|[#?/]/g, (char) => percentEncode(Buffer.from(char, 'latin1')))}`;
      judgeGenerated(await send(path, { headers: asBrowser }), 'page');
    });
  });

  it('never fails with a 5xx at the hosted forms of a real interaction', async () => {
    const interaction = await openInteraction();
    // The CSRF token leads the login posts, so the login handler itself reads the generated fields. Not at abort:
    // a valid one there would end the interaction for the runs after it.
    const body = parameters({ email: [urlencoded(userEmail)], password: [] });
    await property(fc.tuple(fc.constantFrom('login', 'login', 'login', 'confirm', 'abort'), body), async ([step, generated]) => {
      const answer = await interaction.post(step, Buffer.from(`${step === 'login' ? `csrf=${interaction.csrf}&` : ''}${generated}`, 'latin1'));
      judgeGenerated(answer, 'any');
      if (answer.status === 200) expect(textOf(answer.body, '.error')).toBeTruthy();
    });
  });
});

describe('after all of that', () => {
  it('still signs a user in through the real form', async () => {
    const user = await createUser(server.services);
    const { tokens } = await signIn(rp, createBrowser(), { email: user.email, password, scope: 'openid email', consent: true });
    expect(tokens.claims()!.sub).toBe(user.id);
  });
});
