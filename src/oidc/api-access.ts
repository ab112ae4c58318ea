import { errors, type Client, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import type { ApiForClient } from '../store/clients.js';

type FindApiForClient = (clientId: string, audience: string) => Promise<ApiForClient | undefined>;

/** Routes where the client asks afresh for scopes (RFC 6749 §3.3); elsewhere it redeems what was granted before. */
const authorizationRoutes = new Set(['authorization', 'resume', 'pushed_authorization_request']);

function isFreshRequest(ctx: KoaContextWithOIDC): boolean {
  return authorizationRoutes.has(ctx.oidc.route) || ctx.oidc.params?.grant_type === 'client_credentials';
}

function requestedScopes(ctx: KoaContextWithOIDC): string[] {
  const scope = ctx.oidc.params?.scope;
  return typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [];
}

/**
 * Least privilege for APIs (RFC 9700 §2.3, RFC 8707 §2, RFC 6749 §3.3): a client gets access tokens only for the
 * APIs it was given with `latchkey clients create|update --api`, carrying only the scopes it was given of them.
 */
export function createApiAccess(deps: { findApiForClient: FindApiForClient; accessTokenTtlSeconds: number }) {
  // The refresh check below and oidc-provider then ask about the same API in one request: one lookup serves both.
  const lookups = new WeakMap<KoaContextWithOIDC, Map<string, Promise<ApiForClient | undefined>>>();
  function findApi(ctx: KoaContextWithOIDC, clientId: string, audience: string) {
    let forRequest = lookups.get(ctx);
    if (!forRequest) lookups.set(ctx, (forRequest = new Map()));
    const key = JSON.stringify([clientId, audience]);
    let found = forRequest.get(key);
    if (!found) forRequest.set(key, (found = deps.findApiForClient(clientId, audience)));
    return found;
  }

  /**
   * features.resourceIndicators.getResourceServerInfo: oidc-provider asks this for every API a request names, at
   * the authorization endpoint and at the token endpoint (client credentials, code exchange, refresh), with the
   * client making the request. An API that is not registered and one the client was not given look the same
   * (invalid_target), so a client learns nothing about APIs it may not use.
   */
  async function resourceServerInfo(ctx: KoaContextWithOIDC, indicator: string, client: Client): Promise<ResourceServer> {
    const api = await findApi(ctx, client.clientId, indicator);
    if (!api || api.allowedScopes === null) {
      throw new errors.InvalidTarget(`resource ${indicator} is not an API this client may use`);
    }
    const allowed = api.scopes.filter((scope) => api.allowedScopes!.includes(scope));
    if (isFreshRequest(ctx)) {
      const requested = requestedScopes(ctx);
      // A scope of the API the client was not given is refused, not quietly dropped: the client asked for more than
      // it may have. Scopes no requested API defines are left to oidc-provider, which ignores them (RFC 6749 §3.3).
      const refused = requested.filter((scope) => api.scopes.includes(scope) && !allowed.includes(scope));
      if (refused.length > 0) {
        throw new errors.InvalidScope(`this client may not ask for ${refused.join(' ')} at ${indicator}`, refused.join(' '));
      }
      // The user consents to an API through its scopes: the consent page lists each API with the scopes asked of
      // it. A token for an API asked without any would reach that API although the page never named it.
      if (ctx.oidc.route !== 'token' && !requested.some((scope) => allowed.includes(scope))) {
        throw new errors.InvalidScope(`ask for at least one scope of ${indicator} this client may use (${allowed.join(' ') || 'none'})`, allowed.join(' '));
      }
    }
    return {
      audience: api.audience,
      // Only what the client may have: at a code exchange or refresh this also narrows a grant made before the
      // client's APIs were reduced.
      scope: allowed.join(' '),
      accessTokenTTL: deps.accessTokenTtlSeconds,
      // RFC 9068 JWT access tokens, verifiable offline through the JWKS.
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'RS256' } },
    };
  }

  /**
   * oidc-provider consumes the presented refresh token (rotation) before it resolves `resource`, so a refresh with
   * a resource it then refuses would burn the token, and the client's retry would look like theft (replay: the
   * grant revoked). This runs from rotateRefreshToken, the last hook before the token is consumed, and refuses
   * every such request while the token is still unused: the same checks oidc-provider makes afterwards.
   */
  async function checkRefreshResource(ctx: KoaContextWithOIDC): Promise<void> {
    const refreshToken = ctx.oidc.entities.RefreshToken;
    const client = ctx.oidc.client;
    if (!refreshToken || !client) return;
    const requested: unknown = ctx.oidc.params?.resource;
    let resource: unknown;
    if (requested !== undefined) {
      if (typeof requested !== 'string') throw new errors.InvalidTarget('only one resource may be requested with a refresh token');
      if (!refreshToken.resourceIndicators.has(requested)) {
        throw new errors.InvalidTarget(`resource ${requested} was not granted with this refresh token`);
      }
      resource = requested;
    } else {
      // useGrantedResource: without `resource`, the API granted at authorization (when there is exactly one).
      // Several APIs granted at authorization: oidc-provider refuses to pick one.
      resource = (refreshToken as unknown as { resource?: string | string[] }).resource;
      if (Array.isArray(resource) && resource.length > 0) {
        throw new errors.InvalidTarget('this refresh token was granted for several APIs: name one with resource');
      }
    }
    if (typeof resource === 'string') await resourceServerInfo(ctx, resource, client);
  }

  return { resourceServerInfo, checkRefreshResource };
}
