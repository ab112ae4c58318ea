import * as oidc from 'openid-client';
import { isLoopbackHost } from '../absolute-uri.js';
import type { StoredConnection } from '../store/connections.js';
import { UserFacingError } from '../user-facing-error.js';
import type { ConnectionSecretBox } from './secret-box.js';

/** An upstream that could not be reached or is not an OpenID Connect provider; the message says which. */
export class UpstreamError extends UserFacingError {
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamError';
  }
}

export type UpstreamSettings = { timeoutSeconds: number; metadataTtlSeconds: number; now: () => number };

/**
 * The client authentication to use at the upstream's token endpoint: client_secret_basic unless the upstream says
 * it takes only client_secret_post (OpenID Connect Discovery §3: basic is the default when it says nothing);
 * a public registration authenticates with PKCE alone.
 */
function clientAuth(secret: string | undefined, supported: string[] | undefined): oidc.ClientAuth {
  if (secret === undefined) return oidc.None();
  if (supported && !supported.includes('client_secret_basic') && supported.includes('client_secret_post')) return oidc.ClientSecretPost(secret);
  return oidc.ClientSecretBasic(secret);
}

/** Plain http only to this machine (tests, a second Latchkey on localhost); anything else must be https. */
export function checkIssuerUrl(issuer: string): URL {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new UpstreamError(`issuer "${issuer}" is not an absolute URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new UpstreamError(`issuer "${issuer}" must use https (http is allowed only for localhost)`);
  }
  return url;
}

function describe(error: unknown): string {
  const { name, message, cause } = error as { name?: string; message?: string; cause?: { message?: string } };
  if (name === 'TimeoutError' || name === 'AbortError') return 'it did not answer in time';
  return [message, cause?.message].filter(Boolean).join(': ') || 'unknown error';
}

/**
 * openid-client Configurations for the connections, one per connection, each used for at most
 * `metadataTtlSeconds`: then the discovery document is fetched again, and with the new Configuration the JWKS too.
 * Between those, an ID token whose `kid` the cached JWKS lacks makes oauth4webapi fetch the JWKS again, at most once
 * a minute (its getPublicSigKeyFromIssuerJwksUri), so an upstream key rotation needs no restart. A changed connection
 * (new secret, issuer …) is a new entry at once; every request to the upstream gives up after `timeoutSeconds`.
 */
export function createUpstreams(deps: { settings: UpstreamSettings; secretBox: ConnectionSecretBox }) {
  const { settings, secretBox } = deps;
  const cache = new Map<string, { fingerprint: string; fetchedAt: number; configuration: Promise<oidc.Configuration> }>();

  async function discover(issuer: string, clientId: string, secret: string | undefined): Promise<oidc.Configuration> {
    const url = checkIssuerUrl(issuer);
    const insecure = url.protocol === 'http:';
    let configuration: oidc.Configuration;
    try {
      configuration = await oidc.discovery(url, clientId, undefined, undefined, {
        timeout: settings.timeoutSeconds,
        ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
      });
    } catch (error) {
      throw new UpstreamError(`could not read the OpenID Connect discovery document of ${issuer}: ${describe(error)}`);
    }
    const metadata = configuration.serverMetadata();
    if (!metadata.authorization_endpoint || !metadata.token_endpoint || !metadata.jwks_uri) {
      throw new UpstreamError(`${issuer} is not an OpenID Connect provider: its discovery document lacks the authorization, token or JWKS endpoint`);
    }
    const authenticated = new oidc.Configuration(metadata, clientId, undefined, clientAuth(secret, metadata.token_endpoint_auth_methods_supported));
    authenticated.timeout = settings.timeoutSeconds;
    if (insecure) oidc.allowInsecureRequests(authenticated);
    // openid-client skips the signature of an ID token fetched from the token endpoint (OIDC Core §3.1.3.7 step 6
    // lets TLS stand in for it). Latchkey verifies it against the upstream's JWKS all the same: a token endpoint
    // reached through a misconfigured proxy or plain http on localhost is no proof of who signed the token.
    oidc.enableNonRepudiationChecks(authenticated);
    return authenticated;
  }

  return {
    discover,
    /** The Configuration to use for `connection` now (fetched when missing, stale or the connection changed). */
    configurationFor(connection: StoredConnection): Promise<oidc.Configuration> {
      const fingerprint = JSON.stringify([connection.issuer, connection.clientId, connection.clientSecretSealed, connection.updatedAt]);
      const cached = cache.get(connection.id);
      const now = settings.now();
      if (cached && cached.fingerprint === fingerprint && now - cached.fetchedAt < settings.metadataTtlSeconds * 1000) return cached.configuration;
      const secret = connection.clientSecretSealed === null ? undefined : secretBox.open(connection.id, connection.clientSecretSealed);
      const configuration = discover(connection.issuer, connection.clientId, secret);
      cache.set(connection.id, { fingerprint, fetchedAt: now, configuration });
      // A failed discovery is not kept: the next sign-in tries again.
      configuration.catch(() => {
        if (cache.get(connection.id)?.configuration === configuration) cache.delete(connection.id);
      });
      return configuration;
    },
  };
}

export type Upstreams = ReturnType<typeof createUpstreams>;
