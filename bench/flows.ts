import crypto from 'node:crypto';
import http from 'node:http';

/**
 * The browser side of the flows the benchmark needs, kept lean so the load generator costs little next to the
 * server: node:http on kept-alive connections (fetch cost about 1 ms of CPU per request, a sixth of a sign-in's
 * CPU on the server's own machine), manual redirects, a cookie map per origin (a federated sign-in visits two
 * Latchkeys, whose cookies have the same names), and the hidden fields of Latchkey's own forms.
 */
export type Session = { cookies: Map<string, Map<string, string>> };

export const newSession = (): Session => ({ cookies: new Map() });

function cookiesOf(session: Session, url: string): Map<string, string> {
  const { origin } = new URL(url);
  let cookies = session.cookies.get(origin);
  if (!cookies) session.cookies.set(origin, cookies = new Map());
  return cookies;
}

// Idle sockets are dropped after 4 s, before Node's server closes them (5 s), so no request races a closing socket.
const agent = new http.Agent({ keepAlive: true, timeout: 4000 });

type Reply = { status: number; location: string | undefined; body: string };
type Post = { form: Record<string, string> };

function cookieHeader(session: Session, url: string): string {
  return [...cookiesOf(session, url)].map(([name, value]) => `${name}=${value}`).join('; ');
}

function send(session: Session, url: string, post?: Post): Promise<Reply> {
  const body = post && new URLSearchParams(post.form).toString();
  const headers: http.OutgoingHttpHeaders = { cookie: cookieHeader(session, url) };
  if (body !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    headers['content-length'] = Buffer.byteLength(body);
  }
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: post ? 'POST' : 'GET', headers, agent }, (response) => {
      const cookies = cookiesOf(session, url);
      for (const line of response.headers['set-cookie'] ?? []) {
        const [pair] = line.split(';');
        const index = pair.indexOf('=');
        cookies.set(pair.slice(0, index), pair.slice(index + 1));
      }
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, location: response.headers.location, body: Buffer.concat(chunks).toString() }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** Follows redirects from `url`; stops at a page (returns its HTML) or at `redirectUri` (returns the callback URL). */
async function follow(session: Session, url: string, redirectUri: string, post?: Post): Promise<{ url: string; html?: string }> {
  let current = url;
  let response = await send(session, current, post);
  for (let hops = 0; response.status >= 300 && response.status < 400; hops++) {
    if (hops > 10) throw new Error(`too many redirects from ${url}`);
    current = new URL(response.location!, current).href;
    if (current.startsWith(redirectUri)) return { url: current };
    response = await send(session, current);
  }
  if (response.status < 200 || response.status >= 300) throw new Error(`${current} answered ${response.status}: ${response.body.slice(0, 300)}`);
  return { url: current, html: response.body };
}

function hiddenField(html: string, name: string): string {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html) ?? new RegExp(`value="([^"]*)" name="${name}"`).exec(html);
  if (!match) throw new Error(`no ${name} field on the page: ${html.slice(0, 300)}`);
  return match[1];
}

function formAction(html: string, suffix: string, base: string): string {
  const match = new RegExp(`action="([^"]*${suffix})"`).exec(html);
  if (!match) throw new Error(`no form posting to …${suffix}: ${html.slice(0, 300)}`);
  return new URL(match[1].replaceAll('&amp;', '&'), base).href;
}

export type AuthorizationRequest = {
  origin: string;
  clientId: string;
  redirectUri: string;
  scope: string;
  resource?: string;
};

export type Code = { code: string; codeVerifier: string };

function authorizationUrl(request: AuthorizationRequest) {
  const codeVerifier = crypto.randomBytes(32).toString('base64url');
  const state = crypto.randomBytes(16).toString('base64url');
  const url = new URL('/auth', request.origin);
  url.search = new URLSearchParams({
    client_id: request.clientId,
    response_type: 'code',
    redirect_uri: request.redirectUri,
    scope: request.scope,
    state,
    nonce: crypto.randomBytes(16).toString('base64url'),
    code_challenge: crypto.createHash('sha256').update(codeVerifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...(request.resource ? { resource: request.resource } : {}),
  }).toString();
  return { url: url.href, codeVerifier, state };
}

function codeFrom(callbackUrl: string, state: string): string {
  const params = new URL(callbackUrl).searchParams;
  if (params.get('state') !== state || !params.get('code')) throw new Error(`no code at the callback: ${callbackUrl}`);
  return params.get('code')!;
}

/** Who signs in, and how: a password, then an authenticator code when asked, or first through a connection's button. */
export type Credentials = {
  email: string;
  password: string;
  /** The connection whose button is pressed on Latchkey's login page: the password is then typed at the upstream. */
  connection?: string;
  /** The authenticator app's current code, computed when the code page is shown. */
  totpCode?: () => string;
};

/**
 * The whole browser-less sign-in: authorize → (a connection's button → the upstream's authorize) → login form
 * (argon2id) → the code page when shown → consent when shown (at each provider) → code at the callback.
 */
export async function signIn(session: Session, request: AuthorizationRequest, credentials: Credentials): Promise<Code> {
  const { url, codeVerifier, state } = authorizationUrl(request);
  const { email, password, connection, totpCode } = credentials;
  let step = await follow(session, url, request.redirectUri);
  let isConnectionChosen = connection === undefined;
  let isCodeGiven = totpCode === undefined;
  // Every page of a sign-in is one of these forms; more pages than forms to fill means the flow went in circles.
  for (let pages = 0; step.html !== undefined; pages++) {
    const { html } = step;
    if (pages > 5) throw new Error(`sign-in stopped at ${step.url}: ${html.slice(0, 300)}`);
    const submit = (suffix: string, fields: Record<string, string> = {}) =>
      follow(session, formAction(html, suffix, step.url), request.redirectUri, { form: { csrf: hiddenField(html, 'csrf'), ...fields } });
    if (!isConnectionChosen) {
      step = await submit(`/federated/${connection}`);
      isConnectionChosen = true;
    } else if (html.includes('name="password"')) {
      step = await submit('/login', { email, password });
    } else if (totpCode && html.includes('/mfa"')) {
      step = await submit('/mfa', { code: totpCode() });
      isCodeGiven = true;
    } else if (html.includes('/confirm"')) {
      step = await submit('/confirm');
    } else {
      throw new Error(`sign-in stopped at ${step.url}: ${html.slice(0, 300)}`);
    }
  }
  if (!isCodeGiven) throw new Error(`${email} signed in without being asked for an authenticator code`);
  return { code: codeFrom(step.url, state), codeVerifier };
}

/** With a signed-in session and a grant already given, /auth answers straight with a code: single sign-on. */
export async function authorizeSilently(session: Session, request: AuthorizationRequest): Promise<Code> {
  const { url, codeVerifier, state } = authorizationUrl(request);
  const response = await send(session, url);
  const { location } = response;
  if (response.status !== 303 || !location?.startsWith(request.redirectUri)) {
    throw new Error(`silent authorization answered ${response.status} ${location ?? ''}`);
  }
  return { code: codeFrom(location, state), codeVerifier };
}

/** Runs `task` `count` times with at most `concurrency` in flight. */
export async function inParallel<T>(count: number, concurrency: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const index = next++;
      results[index] = await task(index);
    }
  }));
  return results;
}
