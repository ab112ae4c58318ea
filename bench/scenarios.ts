import { cli } from './cli.js';
import { authorizeSilently, inParallel, newSession, signIn, type AuthorizationRequest, type Code } from './flows.js';
import { runLoad, type LoadResult } from './load.js';
import { createTotpUsers, measureSignIns, type UpstreamUsage } from './sign-ins.js';

export type Timing = {
  warmupSeconds: number;
  durationSeconds: number;
  connections: number;
  signInConcurrency: number;
  /** Runs only the scenarios whose name contains this text, or one of these comma-separated texts (profiling one path). */
  only?: string;
};

/** Where the load goes: the issuer's origin, and the server processes (one, or several instances) it measures. */
export type Target = { origin: string; pids: number[] };

/** What bounds a scenario on this machine, so its result can be read as a fraction of what is possible. */
export type CeilingName = 'httpDiscovery' | 'httpJwks' | 'koaDiscovery' | 'koaJwks' | 'rs256' | 'argon2' | 'providerUserinfo' | 'providerIntrospection';

export type ScenarioResult = LoadResult & {
  name: string;
  /** The ceilings it is compared with, the physical limit first. */
  ceilings: CeilingName[];
  /** How many of the ceiling's operations one request costs (an ID token and a JWT access token: 2 signatures). */
  ceilingOpsPerRequest: number;
  /** A federated sign-in's upstream Latchkey: its part of `cpuSecondsPer1000` (which is the sum) and its memory. */
  upstream?: UpstreamUsage;
};

/** Whether `--only` (a text, or comma-separated texts, any of which the name contains) leaves this scenario in. */
export function isWanted(only: string | undefined, name: string): boolean {
  return !only || only.split(',').some((text) => name.includes(text));
}

/** The federated sign-in's name: run.ts starts the upstream Latchkey only when `--only` leaves this scenario in. */
export const federatedSignInName = 'sign-in, federated (upstream Latchkey → consent → code)';

/** A second Latchkey, the upstream provider of the federated sign-in: its origin, processes and CLI environment. */
export type Upstream = { target: Target; env: Record<string, string> };

const password = 'bench passphrase that is long enough';
const audience = 'https://api.bench.example';

type Fixture = {
  target: Target;
  env: Record<string, string>;
  runId: string;
  serviceAuth: string;
  appAuth: string;
  app: AuthorizationRequest;
  consentApp: AuthorizationRequest;
  emails: string[];
  /** The connection to the upstream and the people who sign in there (as many as sign in at once). */
  federation?: { pids: number[]; connection: string; emails: string[] };
};

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/**
 * Registers an API, three clients and the users through the CLI, as an operator would; with an upstream, Latchkey as
 * a client there (skipping consent, as docs/federation.md suggests for another Latchkey), its users, and the
 * connection to it here.
 */
export async function prepare(target: Target, env: Record<string, string>, runId: string, users: number, upstream?: Upstream): Promise<Fixture> {
  const redirectUri = 'http://127.0.0.1:9/callback';
  const secret = `bench-secret-${runId}-0123456789abcdefghij`;
  await cli(env, 'apis', 'create', '--audience', audience, '--scopes', 'read write').catch(() => {}); // kept across runs on one PostgreSQL
  // Each client is given the API scopes its scenarios ask for (client_credentials: read; the app's tokens: read write).
  await cli(env, 'clients', 'create', '--client-id', `service-${runId}`, '--client-secret', secret, '--grant-types', 'client_credentials',
    '--api', `${audience}:read`);
  await cli(env, 'clients', 'create', '--client-id', `app-${runId}`, '--client-secret', secret, '--redirect-uri', redirectUri, '--skip-consent',
    '--api', `${audience}:read,write`);
  await cli(env, 'clients', 'create', '--client-id', `consent-${runId}`, '--client-secret', secret, '--redirect-uri', redirectUri);
  const emails = Array.from({ length: users }, (_, i) => `bench-${i}-${runId}@example.com`);
  for (const email of emails) await cli(env, 'users', 'create', '--email', email, '--password', password, '--given-name', 'Bench', '--family-name', 'User');
  const scope = 'openid email profile';
  const { origin } = target;
  const consentApp = { origin, clientId: `consent-${runId}`, redirectUri, scope };
  return {
    target,
    env,
    runId,
    serviceAuth: basic(`service-${runId}`, secret),
    appAuth: basic(`app-${runId}`, secret),
    app: { origin, clientId: `app-${runId}`, redirectUri, scope },
    consentApp,
    emails,
    ...(upstream ? { federation: await connectUpstream(env, runId, users, upstream, consentApp) } : {}),
  };
}

/**
 * Registers Latchkey at the upstream and the connection to it here, and the upstream's people; each signs in once,
 * one after the other, so the measured sign-ins are those of people already linked (as the password sign-in's users
 * already exist). Their first sign-ins at once time out on SQLite: creating the account inside its transaction also
 * reads outside it (the look-alike check), and eight such transactions hold every pooled connection.
 */
async function connectUpstream(env: Record<string, string>, runId: string, users: number, upstream: Upstream, app: AuthorizationRequest) {
  const connection = `upstream-${runId}`;
  const clientId = `latchkey-${runId}`;
  const secret = `bench-upstream-secret-${runId}-0123456789`;
  await cli(upstream.env, 'clients', 'create', '--client-id', clientId, '--client-secret', secret,
    '--redirect-uri', `${app.origin}/connections/${connection}/callback`, '--skip-consent', '--name', 'Latchkey');
  const emails = Array.from({ length: users }, (_, i) => `bench-upstream-${i}-${runId}@example.com`);
  for (const email of emails) await cli(upstream.env, 'users', 'create', '--email', email, '--password', password, '--given-name', 'Bench', '--family-name', 'Upstream');
  await cli(env, 'connections', 'create', '--id', connection, '--issuer', upstream.target.origin, '--client-id', clientId, '--client-secret', secret, '--name', 'Upstream');
  for (const email of emails) await signIn(newSession(), app, { email, password, connection });
  return { pids: upstream.target.pids, connection, emails };
}

type Tokens = { access_token: string; refresh_token?: string; id_token?: string };

async function redeem(fixture: Fixture, request: AuthorizationRequest, code: Code): Promise<Tokens> {
  const response = await fetch(`${fixture.target.origin}/token`, {
    method: 'POST',
    headers: { authorization: fixture.appAuth, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: code.code, code_verifier: code.codeVerifier, redirect_uri: request.redirectUri }),
  });
  if (!response.ok) throw new Error(`code exchange answered ${response.status}: ${await response.text()}`);
  return response.json() as Promise<Tokens>;
}

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const formHeaders = (authorization: string) => ({ authorization, 'content-type': 'application/x-www-form-urlencoded' });

/** Runs the same load twice: a warm-up (JIT, caches, pools), then the measured run. */
async function warmThenMeasure(timing: Timing, load: Parameters<typeof runLoad>[0]): Promise<LoadResult> {
  await runLoad({ ...load, duration: timing.warmupSeconds });
  return runLoad({ ...load, duration: timing.durationSeconds });
}

/** Discovery and the JWKS: the documents every client fetches, compared with node:http and Koa answering their bytes. */
export async function runDocumentScenarios(target: Target, timing: Timing, log: (line: string) => void): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const documents = [['discovery', '/.well-known/openid-configuration', 'httpDiscovery', 'koaDiscovery'], ['jwks', '/.well-known/jwks.json', 'httpJwks', 'koaJwks']] as const;
  for (const [name, path, physical, koa] of documents) {
    if (!isWanted(timing.only, name)) continue;
    const result = await warmThenMeasure(timing, { url: `${target.origin}${path}`, connections: timing.connections, pid: target.pids });
    results.push({ name, ceilings: [physical, koa], ceilingOpsPerRequest: 1, ...result });
    log(`  ${name}: ${Math.round(result.requestsPerSecond)} req/s, p99 ${result.latencyP99Ms} ms, ${result.failures} failures`);
  }
  return results;
}

export async function runScenarios(fixture: Fixture, timing: Timing, log: (line: string) => void): Promise<ScenarioResult[]> {
  const { origin, pids: pid } = fixture.target;
  const connections = timing.connections;
  const results: ScenarioResult[] = await runDocumentScenarios(fixture.target, timing, log);
  /** Runs one scenario unless --only leaves it out. */
  async function scenario(name: string, ceiling: CeilingName, ceilingOpsPerRequest: number, measure: () => Promise<LoadResult & { upstream?: UpstreamUsage }>) {
    if (!isWanted(timing.only, name)) return;
    const result = await measure();
    results.push({ name, ceilings: [ceiling], ceilingOpsPerRequest, ...result });
    log(`  ${name}: ${Math.round(result.requestsPerSecond)} req/s, p99 ${result.latencyP99Ms} ms, ${result.failures} failures`);
  }

  // The app's user signs in once; from then on /auth answers with a code straight away (SSO, grant already given).
  const session = newSession();
  const apiRequest: AuthorizationRequest = { ...fixture.app, scope: `${fixture.app.scope} read write`, resource: audience };
  await signIn(session, apiRequest, { email: fixture.emails[0], password });
  const mintCodes = (count: number, request: AuthorizationRequest) => inParallel(count, 16, () => authorizeSilently(session, request));
  const tokensFor = (count: number, request: AuthorizationRequest) =>
    inParallel(count, 8, async () => redeem(fixture, request, (await mintCodes(1, request))[0]));

  await scenario('client_credentials (JWT)', 'rs256', 1, () => warmThenMeasure(timing, {
    url: `${origin}/token`, connections, pid, method: 'POST',
    headers: formHeaders(fixture.serviceAuth),
    body: form({ grant_type: 'client_credentials', resource: audience, scope: 'read' }),
  }));

  // Refresh: every request spends a token taken from the pool and puts back the rotated one it receives.
  await scenario('refresh_token (rotation, ID token + JWT)', 'rs256', 2, async () => {
    const initial = await tokensFor(connections * 3, apiRequest);
    const refreshTokens = initial.map((tokens) => tokens.refresh_token!);
    if (refreshTokens.some((token) => !token) || initial[0].access_token.split('.').length !== 3 || !initial[0].id_token) {
      throw new Error('the code exchange did not return a refresh token, an ID token and a JWT access token');
    }
    return warmThenMeasure(timing, {
      url: `${origin}/token`, connections, pid, method: 'POST',
      headers: formHeaders(fixture.appAuth),
      setupRequest(request) {
        request.body = form({ grant_type: 'refresh_token', refresh_token: refreshTokens.shift() ?? 'pool-exhausted', resource: audience });
        return request;
      },
      onResponse(status, body) {
        if (status === 200) refreshTokens.push((JSON.parse(body) as Tokens).refresh_token!);
      },
    });
  });

  // Codes live 60 s: each batch is minted just before it is redeemed, sized from the warm-up's rate.
  await scenario('authorization_code + PKCE exchange', 'rs256', 2, async () => {
    const exchange = async (codes: Code[]) => runLoad({
      url: `${origin}/token`, connections, pid, method: 'POST', amount: codes.length,
      headers: formHeaders(fixture.appAuth),
      setupRequest(request) {
        const code = codes.shift();
        request.body = form({ grant_type: 'authorization_code', code: code?.code ?? 'pool-exhausted', code_verifier: code?.codeVerifier ?? '', redirect_uri: apiRequest.redirectUri });
        return request;
      },
    });
    const warmup = await exchange(await mintCodes(Math.max(50, Math.round(300 * timing.warmupSeconds)), apiRequest));
    const measuredCodes = Math.min(8000, Math.max(100, Math.round(warmup.requestsPerSecond * timing.durationSeconds)));
    return exchange(await mintCodes(measuredCodes, apiRequest));
  });

  // Opaque access tokens (no resource) for userinfo and introspection.
  const opaque = (await tokensFor(20, fixture.app)).map((tokens) => tokens.access_token);
  if (opaque[0].includes('.')) throw new Error('expected an opaque access token without resource');
  let next = 0;
  await scenario('userinfo (opaque token)', 'providerUserinfo', 1, () => warmThenMeasure(timing, {
    url: `${origin}/me`, connections, pid,
    setupRequest(request) {
      request.headers = { ...request.headers, authorization: `Bearer ${opaque[next++ % opaque.length]}` };
      return request;
    },
  }));
  await scenario('introspection', 'providerIntrospection', 1, async () => {
    let inactive = 0;
    const result = await warmThenMeasure(timing, {
      url: `${origin}/token/introspection`, connections, pid, method: 'POST',
      headers: formHeaders(fixture.appAuth),
      setupRequest(request) {
        request.body = form({ token: opaque[next++ % opaque.length] });
        return request;
      },
      onResponse(status, body) {
        if (status === 200 && !body.includes('"active":true')) inactive += 1;
      },
    });
    return { ...result, failures: result.failures + inactive };
  });

  const signInProcesses: { pids: number[]; upstreamPids?: number[] } = { pids: fixture.target.pids };
  const concurrency = timing.signInConcurrency;
  /** The warm-up and the measured run of a sign-in scenario, with the same sign-in. */
  const warmThenMeasureSignIns = async (signInOnce: (worker: number) => Promise<boolean>, processes = signInProcesses) => {
    await measureSignIns(processes, { durationSeconds: timing.warmupSeconds, concurrency }, signInOnce);
    return measureSignIns(processes, { durationSeconds: timing.durationSeconds, concurrency }, signInOnce);
  };

  await scenario('sign-in (authorize → login → consent → code)', 'argon2', 1, () => warmThenMeasureSignIns(async (worker) => {
    await signIn(newSession(), fixture.consentApp, { email: fixture.emails[worker % fixture.emails.length], password });
    return true;
  }));

  // A code is accepted once per user and 30-second step: the pool is sized from the warm-up's rate so that every
  // measured sign-in has a user whose current code is unused (a run that outpaces it ends early, never fails).
  await scenario('sign-in with a TOTP second factor (login → code → consent → code)', 'argon2', 1, async () => {
    const totpUsers = createTotpUsers(fixture.env, { runId: fixture.runId, password });
    const signInOnce = async () => {
      const user = totpUsers.take();
      if (!user) return false;
      try {
        await signIn(newSession(), fixture.consentApp, { email: user.email, password, totpCode: user.totpCode });
        return true;
      } finally {
        user.release();
      }
    };
    // The warm-up's pool allows 40 sign-ins a second, more than this machine has reached; the measured run's is sized
    // from the warm-up's rate with a quarter to spare, for at most one step (each new step frees every user again).
    await totpUsers.grow(concurrency + Math.ceil(timing.warmupSeconds * 40));
    const warmup = await measureSignIns(signInProcesses, { durationSeconds: timing.warmupSeconds, concurrency }, signInOnce);
    const secondsUntilReuse = Math.min(timing.durationSeconds, 30);
    await totpUsers.grow(Math.min(2000, concurrency + Math.ceil(warmup.requestsPerSecond * secondsUntilReuse * 1.25)));
    return measureSignIns(signInProcesses, { durationSeconds: timing.durationSeconds, concurrency }, signInOnce);
  });

  const { federation } = fixture;
  if (federation) {
    await scenario(federatedSignInName, 'argon2', 1, () => warmThenMeasureSignIns(async (worker) => {
      const credentials = { email: federation.emails[worker % federation.emails.length], password, connection: federation.connection };
      await signIn(newSession(), fixture.consentApp, credentials);
      return true;
    }, { ...signInProcesses, upstreamPids: federation.pids }));
  }
  return results;
}
