import { runCli } from '../src/cli/main.js';
import { authorizeSilently, inParallel, newSession, signIn, type AuthorizationRequest, type Code } from './flows.js';
import { runLoad, type LoadResult } from './load.js';
import { watchTree } from './process-stats.js';

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
};

/** A scenario whose capability is not built yet: reported, so it is not forgotten, and measured once it is. */
/** Whether `--only` (a text, or comma-separated texts, any of which the name contains) leaves this scenario in. */
export function isWanted(only: string | undefined, name: string): boolean {
  return !only || only.split(',').some((text) => name.includes(text));
}

export type PendingScenario = { name: string; pending: string };

/**
 * Sign-in paths being built on other branches. Each is held to the same target as the password sign-in (server CPU
 * per sign-in against one argon2id hash). To measure one: write its flow in flows.ts (as `signIn` is), run it with
 * `measureSignIns` below like the password sign-in, and take its line out of this list.
 */
const pendingSignIns: PendingScenario[] = [
  { name: 'sign-in, federated (upstream provider → Latchkey)', pending: 'not available yet' },
  { name: 'sign-in with a TOTP second factor', pending: 'not available yet' },
];

const password = 'bench passphrase that is long enough';
const audience = 'https://api.bench.example';

type Fixture = {
  target: Target;
  serviceAuth: string;
  appAuth: string;
  app: AuthorizationRequest;
  consentApp: AuthorizationRequest;
  emails: string[];
};

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function cli(env: Record<string, string>, ...argv: string[]): Promise<void> {
  const errors: string[] = [];
  const code = await runCli(argv, env, { stdout: () => {}, stderr: (line) => errors.push(line) });
  if (code !== 0) throw new Error(`latchkey ${argv.slice(0, 2).join(' ')} failed: ${errors.join(' ')}`);
}

/** Registers an API, three clients and the users through the CLI, as an operator would. */
export async function prepare(target: Target, env: Record<string, string>, runId: string, users: number): Promise<Fixture> {
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
  return {
    target,
    serviceAuth: basic(`service-${runId}`, secret),
    appAuth: basic(`app-${runId}`, secret),
    app: { origin, clientId: `app-${runId}`, redirectUri, scope },
    consentApp: { origin, clientId: `consent-${runId}`, redirectUri, scope },
    emails,
  };
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

export async function runScenarios(fixture: Fixture, timing: Timing, log: (line: string) => void): Promise<Array<ScenarioResult | PendingScenario>> {
  const { origin, pids: pid } = fixture.target;
  const connections = timing.connections;
  const results: Array<ScenarioResult | PendingScenario> = await runDocumentScenarios(fixture.target, timing, log);
  /** Runs one scenario unless --only leaves it out. */
  async function scenario(name: string, ceiling: CeilingName, ceilingOpsPerRequest: number, measure: () => Promise<LoadResult>) {
    if (!isWanted(timing.only, name)) return;
    const result = await measure();
    results.push({ name, ceilings: [ceiling], ceilingOpsPerRequest, ...result });
    log(`  ${name}: ${Math.round(result.requestsPerSecond)} req/s, p99 ${result.latencyP99Ms} ms, ${result.failures} failures`);
  }

  // The app's user signs in once; from then on /auth answers with a code straight away (SSO, grant already given).
  const session = newSession();
  const apiRequest: AuthorizationRequest = { ...fixture.app, scope: `${fixture.app.scope} read write`, resource: audience };
  await signIn(session, apiRequest, fixture.emails[0], password);
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

  await scenario('sign-in (authorize → login → consent → code)', 'argon2', 1, async () => {
    await measureSignIns(fixture, { ...timing, durationSeconds: timing.warmupSeconds });
    return measureSignIns(fixture, timing);
  });
  results.push(...pendingSignIns.filter((pending) => isWanted(timing.only, pending.name)));
  return results;
}

/** Fresh browsers signing in for the duration, `signInConcurrency` at a time; every one hashes a password. */
async function measureSignIns(fixture: Fixture, timing: Timing): Promise<LoadResult> {
  const watch = watchTree(fixture.target.pids);
  const latencies: number[] = [];
  let failures = 0;
  const started = performance.now();
  const deadline = started + timing.durationSeconds * 1000;
  await Promise.all(Array.from({ length: timing.signInConcurrency }, async (_, worker) => {
    while (performance.now() < deadline) {
      const begun = performance.now();
      try {
        await signIn(newSession(), fixture.consentApp, fixture.emails[worker % fixture.emails.length], password);
        latencies.push(performance.now() - begun);
      } catch {
        failures += 1;
      }
    }
  }));
  const durationSeconds = (performance.now() - started) / 1000;
  const usage = watch.stop();
  latencies.sort((a, b) => a - b);
  const percentile = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0);
  return {
    requests: latencies.length,
    requestsPerSecond: latencies.length / durationSeconds,
    latencyP50Ms: percentile(0.5),
    latencyP99Ms: percentile(0.99),
    failures,
    cpuSecondsPer1000: latencies.length ? (usage.cpuSeconds / latencies.length) * 1000 : null,
    peakRssBytes: usage.peakRssBytes,
    durationSeconds,
  };
}
