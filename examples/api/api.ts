import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import Koa, { type Context, type Next } from 'koa';

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
};

export type RunningApi = { url: string; close(): Promise<void> };

/** RFC 6750 §2.1: `Bearer` followed by a b64token. */
const bearerHeader = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i;

/** RFC 6750 §3: the WWW-Authenticate challenge; without an error code when the request carried no token at all. */
function challenge(realm: string, error?: string, description?: string, scope?: string): string {
  const params = [`realm="${realm}"`];
  if (error) params.push(`error="${error}"`);
  if (description) params.push(`error_description="${description.replace(/["\\]/g, '')}"`);
  if (scope) params.push(`scope="${scope}"`);
  return `Bearer ${params.join(', ')}`;
}

function refuse(ctx: Context, status: number, header: string, error?: string, description?: string) {
  ctx.status = status;
  ctx.set('WWW-Authenticate', header);
  ctx.body = error ? { error, error_description: description } : { error: 'unauthorized', error_description: 'a Bearer access token is required' };
}

/** A small resource server: verifies Latchkey's RFC 9068 JWT access tokens offline against its JWKS. */
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

  async function authenticate(ctx: Context, next: Next) {
    const header = ctx.get('Authorization');
    if (!header || !/^Bearer(\s|$)/i.test(header)) return refuse(ctx, 401, challenge(realm));
    const match = bearerHeader.exec(header);
    if (!match) return refuse(ctx, 400, challenge(realm, 'invalid_request', 'malformed Bearer authorization header'), 'invalid_request', 'malformed Bearer authorization header');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(match[1], jwks, { issuer, audience, typ: 'at+jwt', algorithms: ['RS256'], currentDate: new Date(now()) }));
    } catch (error) {
      // Only a bad token is the caller's fault; an unreachable Latchkey (JWKS download failed) is ours: 503.
      const isTokenProblem = error instanceof errors.JOSEError && !(error instanceof errors.JWKSTimeout) && !(error instanceof errors.JWKSInvalid);
      if (!isTokenProblem) {
        ctx.status = 503;
        ctx.set('Retry-After', '5');
        ctx.body = { error: 'temporarily_unavailable', error_description: 'the signing keys could not be fetched' };
        return;
      }
      const description = error instanceof errors.JWTExpired ? 'the access token expired' : 'the access token is invalid';
      return refuse(ctx, 401, challenge(realm, 'invalid_token', description), 'invalid_token', description);
    }
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
    if (!scopes.includes(requiredScope)) {
      const description = `the "${requiredScope}" scope is required`;
      return refuse(ctx, 403, challenge(realm, 'insufficient_scope', description, requiredScope), 'insufficient_scope', description);
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
  app.use(router.routes());
  app.use(router.allowedMethods());
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://localhost:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
