import { randomBytes } from 'node:crypto';
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { accountClient } from '../account/account-client.js';
import type { Config } from '../config.js';
import { supportedLanguages } from '../i18n/catalogues.js';
import type { Clients } from '../registry/clients.js';
import type { CookieSecrets, SigningKey } from '../signing-keys.js';
import { createApiAccess } from './api-access.js';
import { scopeClaims } from './claims.js';
import { checkWebOriginsMetadata, clientBasedCORS } from './cors.js';
import { createFetch } from './outgoing-requests.js';
import { loadExistingGrant } from './skip-consent.js';

export type ProviderDeps = {
  config: Config;
  issuer: string;
  signingKeys: SigningKey[];
  cookieSecrets: CookieSecrets;
  adapter: NonNullable<Configuration['adapter']>;
  findAccount: NonNullable<Configuration['findAccount']>;
  clients: Pick<Clients, 'findApiForClient'>;
  /** `features.deviceFlow`: the device authorization grant and its pages (src/device/). */
  deviceFlow: NonNullable<NonNullable<Configuration['features']>['deviceFlow']>;
  /** The login and consent prompts, with the second-factor check (src/mfa/interaction-policy.ts). */
  interactionPolicy: NonNullable<NonNullable<Configuration['interactions']>['policy']>;
  /** The `acr` values issued and advertised (src/mfa/requirement.ts). */
  acrValues: string[];
  /** Authorization parameters beyond the standard ones, with their validators (`connection`: src/federation/). */
  extraParams: NonNullable<Configuration['extraParams']>;
  pages: {
    renderError: NonNullable<Configuration['renderError']>;
    logoutSource: (ctx: KoaContextWithOIDC, form: string) => Promise<void>;
    postLogoutSuccessSource: (ctx: KoaContextWithOIDC) => Promise<void>;
  };
};

/** Every protocol decision Latchkey makes, in one place. oidc-provider does the protocol itself. */
export function createProvider(deps: ProviderDeps): Provider {
  const { config } = deps;
  const apiAccess = createApiAccess({ findApiForClient: deps.clients.findApiForClient, accessTokenTtlSeconds: config.accessTokenTtlSeconds });
  const grantTtlSeconds = Math.max(config.sessionTtlSeconds, config.refreshTokenTtlSeconds);

  const configuration: Configuration = {
    adapter: deps.adapter,
    findAccount: deps.findAccount,
    // Latchkey's own first-party client: the account pages sign people in through it (src/account/account-client.ts).
    clients: [accountClient(deps.issuer)],
    jwks: { keys: deps.signingKeys },
    cookies: { keys: deps.cookieSecrets.cookieKeys },
    renderError: deps.pages.renderError,
    // OpenID Connect Discovery 1.0 §3: the languages the hosted pages speak (src/i18n/, docs/translations.md). And
    // `prompt_values_supported` (registered by Initiating User Registration via OpenID Connect 1.0), which
    // oidc-provider does not publish: `none` and the policy's requestable prompts, the values it accepts.
    discovery: {
      ui_locales_supported: [...supportedLanguages],
      prompt_values_supported: ['none', ...deps.interactionPolicy.filter((prompt) => prompt.requestable).map((prompt) => prompt.name)],
    },

    // Authorization code flow only: no implicit or hybrid response types (RFC 9700 §2.1.2); oidc-provider has no
    // password grant at all.
    responseTypes: ['code'],
    // PKCE with S256 for every client, confidential ones too (RFC 9700 §2.1.1); oidc-provider never accepts plain.
    pkce: { required: () => true },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    enabledJWA: { idTokenSigningAlgValues: ['RS256'] },
    fetch: createFetch(config),
    loadExistingGrant,
    extraParams: deps.extraParams,
    extraClientMetadata: {
      properties: ['skip_consent', 'require_mfa', 'web_origins'],
      validator(_ctx, key, value) {
        if ((key === 'skip_consent' || key === 'require_mfa') && value !== undefined && typeof value !== 'boolean') {
          throw new errors.InvalidClientMetadata(`${key} must be a boolean`);
        }
        if (key === 'web_origins' && !checkWebOriginsMetadata(value)) {
          throw new errors.InvalidClientMetadata('web_origins must be a list of origins');
        }
      },
    },
    clientBasedCORS,

    scopes: ['openid', 'offline_access', 'email', 'profile'],
    claims: scopeClaims,
    // RFC 9068 §2.2.3.1: a JWT access token may carry identity claims. An API gets the user's email only when the
    // user granted the `email` scope to the app; the claim comes from the account as it is now.
    async extraTokenClaims(ctx, token) {
      if (token.kind !== 'AccessToken' || !token.resourceServer || !token.grantId) return undefined;
      const grant = ctx.oidc.entities.Grant ?? await ctx.oidc.provider.Grant.find(token.grantId);
      if (!grant?.getOIDCScope().split(' ').includes('email')) return undefined;
      // The token endpoint has loaded the account already (refresh, code); load it again only when it has not.
      const loaded = ctx.oidc.entities.Account;
      const account = loaded?.accountId === token.accountId ? loaded : await deps.findAccount(ctx, token.accountId);
      const claims = await account?.claims('userinfo', 'email', {}, []);
      return claims?.email ? { email: claims.email } : undefined;
    },

    // RFC 9068 §2.2.3: a JWT access token carries `scope`, also when the client got no scope of the API (an
    // audience-only token), so an API reads one claim the same way every time; oidc-provider leaves an empty one out.
    formats: {
      customizers: {
        jwt(_ctx, _token, jwt) {
          jwt.payload.scope ??= '';
        },
      },
    },

    routes: { jwks: '/.well-known/jwks.json' },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}`, policy: deps.interactionPolicy },
    // OpenID Connect Core §2 `acr`, advertised in discovery (acr_values_supported); an app asks for a second factor
    // with acr_values=urn:latchkey:acr:mfa (docs/mfa.md).
    acrValues: deps.acrValues,

    // Every client allowed the refresh_token grant gets one. Without offline_access it ends with the Latchkey
    // session (logout revokes it); with offline_access (and prompt=consent, OIDC Core §11) it outlives the session.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Refresh tokens rotate on every use; oidc-provider revokes the grant when a used one comes back. It asks this
    // just before it consumes the presented token: a `resource` it would refuse afterwards is refused here, while the
    // token is unused, so a client's mistake never looks like a replay.
    async rotateRefreshToken(ctx) {
      await apiAccess.checkRefreshResource(ctx);
      return true;
    },

    ttl: {
      AccessToken: () => config.accessTokenTtlSeconds,
      ClientCredentials: () => config.accessTokenTtlSeconds,
      AuthorizationCode: () => 60,
      IdToken: () => config.idTokenTtlSeconds,
      Interaction: () => config.interactionTtlSeconds,
      // oidc-provider asks at every save. A session nobody signed in to (a cookie-less visit to the logout
      // endpoint stores one) lives minutes; signing in saves it again, with an account and the full lifetime.
      Session: (_ctx, session) => (session.accountId ? config.sessionTtlSeconds : config.anonymousSessionTtlSeconds),
      Grant: () => grantTtlSeconds,
      DeviceCode: () => config.deviceFlow.codeTtlSeconds,
      RefreshToken(ctx, token, client) {
        // A browser app's (public, unbound) rotated refresh token keeps its predecessor's expiry, so a stolen
        // token chain cannot be kept alive forever (oidc-provider's own recommendation).
        const rotated = ctx?.oidc?.entities.RotatedRefreshToken;
        if (rotated && client.applicationType === 'web' && client.clientAuthMethod === 'none' && !token.isSenderConstrained()) {
          return rotated.remainingTTL;
        }
        return config.refreshTokenTtlSeconds;
      },
    },

    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // RFC 7662 §2.1 and §4: only an authenticated client, and only about its own tokens. Another client's token
        // reads as inactive, so no client can learn who holds a token it found. (Latchkey's opaque tokens are for
        // userinfo; APIs verify their JWT access tokens offline, and oidc-provider does not introspect JWTs.)
        allowedPolicy: async (_ctx, client, token) => client.clientAuthMethod !== 'none' && token.clientId === client.clientId,
      },
      revocation: {
        enabled: true,
        // RFC 7009 §2.1: a client revokes only its own tokens. A public client asking about another's gets the
        // RFC's 200 (it learns nothing); a confidential one is told it may not.
        async allowedPolicy(_ctx, client, token) {
          if (token.clientId === client.clientId) return true;
          if (client.clientAuthMethod === 'none') return false;
          throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
        },
      },
      userinfo: { enabled: true },
      // OpenID Connect Core §5.5 (docs/conformance.md): an app may ask for single claims, `essential` or not. It gets
      // only what the person allowed (the consent page names the claims asked for) and what the account holds; a
      // missing essential claim is left out, not an error (§5.5.1). Request objects (`request`, `request_uri`)
      // stay off: the authorization endpoint answers request_not_supported / request_uri_not_supported (§6).
      claimsParameter: { enabled: true },
      deviceFlow: deps.deviceFlow,
      // RFC 9449 DPoP is always on in oidc-provider: a client that sends a proof gets bound tokens, one registered
      // with --require-dpop (dpop_bound_access_tokens) none without one. A public client's refresh token is bound
      // to the same key (oidc-provider binds it), so one stolen from a browser is useless without the private key.
      // RFC 9126: any client may push its authorization request; one registered with --require-par
      // (require_pushed_authorization_requests) must, and a plain authorization request of it is refused.
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false },
      // RFC 7591/7592 with CLIENT_REGISTRATION=token or open: a client registers itself at /reg and reads, updates
      // and deletes itself with its registration access token (rotated at each update). The registrations are
      // written through the registry (adapter.ts), and the initial access token and the per-IP limit are checked
      // in front of the endpoint (registration/guard.ts). Ids are 128 random bits (never UUID-shaped: registry),
      // secrets 256.
      registration: {
        enabled: config.clientRegistration.mode !== 'closed',
        initialAccessToken: false,
        issueRegistrationAccessToken: true,
        idFactory: () => randomBytes(16).toString('base64url'),
        secretFactory: async () => randomBytes(32).toString('base64url'),
      },
      registrationManagement: { enabled: config.clientRegistration.mode !== 'closed', rotateRegistrationAccessToken: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: deps.pages.logoutSource,
        postLogoutSuccessSource: deps.pages.postLogoutSuccessSource,
      },
      // OpenID Connect Back-Channel Logout 1.0: when a Latchkey session ends through RP-initiated logout, every
      // client signed in with it that registered a backchannel_logout_uri gets a signed logout token.
      backchannelLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // A code exchange without `resource` uses the single API granted at authorization.
        useGrantedResource: async () => true,
        // Each API only for the clients given it, with only the scopes they were given.
        getResourceServerInfo: apiAccess.resourceServerInfo,
      },
    },
  };

  const provider = new Provider(deps.issuer, configuration);
  // Behind TRUST_PROXY proxies, Koa takes https from X-Forwarded-Proto and the client IP from X-Forwarded-For. Only
  // the last `trustedProxyCount` addresses of X-Forwarded-For are considered: the ones our own proxies appended. The
  // leftmost entries are whatever the client sent, and would let it pick the IP the login throttle counts.
  provider.proxy = config.trustedProxyCount > 0;
  provider.maxIpsCount = config.trustedProxyCount;
  return provider;
}
