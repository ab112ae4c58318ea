import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import Koa, { type Context, type Next } from 'koa';
import { checkDpopProof, dpopAlgorithms } from './dpop.js';
import { createProofReplayCache } from './proof-replay.js';

export type ApiOptions = {
  /** Latchkey's issuer URL: the `iss` every token must carry. */
  issuer: string;
  /** This API's audience as registered with `latchkey apis create --audience`: the `aud` every token must carry. */
  audience: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** The scope `GET /hello` requires. */
  requiredScope?: string;
  /**
   * The least time between two JWKS downloads caused by a token with an unknown `kid` (jose's cooldown, 30 s by
   * default). A rotated key is picked up on the first token it signed once the cooldown has passed; a shorter
   * cooldown picks it up sooner but lets forged `kid`s make the API fetch the JWKS more often.
   */
  jwksCooldownSeconds?: number;
  /** The API's clock in ms, for `exp` and `nbf` (tests move it forward to see a token expire). */
  now?: () => number;
  /**
   * The API's URL as clients address it (default `http://localhost:<port>`): DPoP proofs must name it (`htu`), so
   * behind a proxy set it to the public URL. Never taken from the request's `Host`.
   */
  url?: string;
  /** How far a DPoP proof's `iat` may be from the API's clock, either way (60 s by default). */
  dpopProofWindowSeconds?: number;
  /** How many accepted DPoP proofs, still inside their window, the API remembers to refuse a replay (100,000). */
  dpopReplayCacheSize?: number;
  /** Browser origins allowed to call the API (CORS), e.g. a single-page app's; none by default. */
  corsOrigins?: string[];
};

export type RunningApi = { url: string; close(): Promise<void> };

/** RFC 6750 §2.1 and RFC 9449 §7.1: `Bearer` or `DPoP` followed by a b64token. */
const authorizationHeader = /^(Bearer|DPoP) ([A-Za-z0-9\-._~+/]+=*)$/i;

type Scheme = 'Bearer' | 'DPoP';

/**
 * RFC 6750 §3 and RFC 9449 §7.1: the WWW-Authenticate challenge of the scheme the request used; without an error
 * code when the request carried no token at all. A DPoP challenge names the proof algorithms accepted.
 */
function challenge(scheme: Scheme, realm: string, error?: string, description?: string, scope?: string): string {
  const params = [`realm="${realm}"`];
  if (scheme === 'DPoP') params.push(`algs="${dpopAlgorithms.join(' ')}"`);
  if (error) params.push(`error="${error}"`);
  if (description) params.push(`error_description="${description.replace(/["\\]/g, '')}"`);
  if (scope) params.push(`scope="${scope}"`);
  return `${scheme} ${params.join(', ')}`;
}

function refuse(ctx: Context, status: number, header: string, error?: string, description?: string) {
  ctx.status = status;
  ctx.set('WWW-Authenticate', header);
  ctx.body = error ? { error, error_description: description } : { error: 'unauthorized', error_description: 'a Bearer access token is required' };
}

function unavailable(ctx: Context, description: string) {
  ctx.status = 503;
  ctx.set('Retry-After', '5');
  ctx.body = { error: 'temporarily_unavailable', error_description: description };
}

/**
 * CORS for the origins given, exactly as the browser sends them: a single-page app calls the API with
 * `Authorization` and `DPoP` headers, which needs a preflight; it may read the challenge of a refusal.
 */
function allowOrigins(origins: string[]) {
  return async (ctx: Context, next: Next) => {
    ctx.vary('Origin');
    const origin = ctx.get('Origin');
    if (!origin || !origins.includes(origin)) return next();
    ctx.set('Access-Control-Allow-Origin', origin);
    ctx.set('Access-Control-Expose-Headers', 'WWW-Authenticate');
    if (ctx.method !== 'OPTIONS') return next();
    ctx.set('Access-Control-Allow-Methods', 'GET');
    ctx.set('Access-Control-Allow-Headers', 'Authorization, DPoP');
    ctx.set('Access-Control-Max-Age', '600');
    ctx.status = 204;
  };
}

/**
 * A small resource server: verifies Latchkey's RFC 9068 JWT access tokens offline against its JWKS. A token bound to
 * a DPoP key (`cnf.jkt`, RFC 9449) is accepted only with the DPoP scheme and a valid proof by that key, never as a
 * bearer token: whoever stole it lacks the key.
 */
export async function startApi(options: ApiOptions): Promise<RunningApi> {
  const { issuer, audience } = options;
  const requiredScope = options.requiredScope ?? 'read';
  const now = options.now ?? Date.now;
  const realm = audience;
  // Caches the keys; a token with a kid it has not seen makes it download the JWKS again (after the cooldown),
  // so a key rotated at Latchkey needs no restart here.
  const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`), {
    cooldownDuration: (options.jwksCooldownSeconds ?? 30) * 1000,
  });

  const dpopWindowSeconds = options.dpopProofWindowSeconds ?? 60;
  const replays = createProofReplayCache({ maxEntries: options.dpopReplayCacheSize ?? 100_000, windowSeconds: dpopWindowSeconds });

  // Known once the port is: requests arrive only after that.
  let publicUrl = '';

  async function authenticate(ctx: Context, next: Next) {
    const header = ctx.get('Authorization');
    if (!header || !/^(Bearer|DPoP)(\s|$)/i.test(header)) return refuse(ctx, 401, challenge('Bearer', realm));
    const match = authorizationHeader.exec(header);
    const scheme: Scheme = /^dpop/i.test(header) ? 'DPoP' : 'Bearer';
    const invalid = (error: string, description: string, status = 401) =>
      refuse(ctx, status, challenge(scheme, realm, error, description), error, description);
    if (!match) return invalid('invalid_request', `malformed ${scheme} authorization header`, 400);
    const token = match[2];
    let payload: JWTPayload & { cnf?: { jkt?: unknown } };
    try {
      ({ payload } = await jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt', algorithms: ['RS256'], currentDate: new Date(now()) }));
    } catch (error) {
      // Only a bad token is the caller's fault; an unreachable Latchkey (JWKS download failed) is ours: 503.
      const isTokenProblem = error instanceof errors.JOSEError && !(error instanceof errors.JWKSTimeout) && !(error instanceof errors.JWKSInvalid);
      if (!isTokenProblem) return unavailable(ctx, 'the signing keys could not be fetched');
      return invalid('invalid_token', error instanceof errors.JWTExpired ? 'the access token expired' : 'the access token is invalid');
    }
    const jkt = typeof payload.cnf?.jkt === 'string' ? payload.cnf.jkt : undefined;
    // RFC 9449 §7.2: a DPoP-bound token sent as a bearer token is refused; any other `cnf` (a binding this API
    // cannot check, such as mTLS) is refused too. A DPoP request needs a bound token: the proof must prove something.
    if (scheme === 'Bearer' && payload.cnf !== undefined) {
      return invalid('invalid_token', 'the access token is sender-constrained: send it with the DPoP scheme and a DPoP proof');
    }
    if (scheme === 'DPoP') {
      if (!jkt) return invalid('invalid_token', 'the access token is not DPoP-bound');
      const problem = await checkDpopProof({
        proof: ctx.get('DPoP') || undefined, accessToken: token, jkt, method: ctx.method,
        url: new URL(`${publicUrl}${ctx.path}`), now: now(), windowSeconds: dpopWindowSeconds, replays,
      });
      if (typeof problem === 'object') return unavailable(ctx, 'too many DPoP proofs to remember; try again shortly');
      if (problem) return invalid('invalid_dpop_proof', problem);
    }
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
    if (!scopes.includes(requiredScope)) {
      const description = `the "${requiredScope}" scope is required`;
      return refuse(ctx, 403, challenge(scheme, realm, 'insufficient_scope', description, requiredScope), 'insufficient_scope', description);
    }
    ctx.state.token = payload;
    await next();
  }

  const router = new Router();
  router.get('/hello', authenticate, (ctx) => {
    const token = ctx.state.token as JWTPayload & { email?: string; client_id?: string };
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      message: `Hello, ${token.email ?? token.sub}!`,
      sub: token.sub,
      email: token.email ?? null,
      clientId: token.client_id,
      scope: token.scope,
      // Which token the API saw (its id and expiry), to show the app refreshing it.
      token: { id: token.jti, expiresAt: token.exp },
    };
  });

  const app = new Koa();
  app.use(allowOrigins(options.corsOrigins ?? []));
  app.use(router.routes());
  app.use(router.allowedMethods());
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  publicUrl = (options.url ?? `http://localhost:${port}`).replace(/\/$/, '');
  return {
    url: `http://localhost:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
