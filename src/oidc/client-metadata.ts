import type { AdapterPayload } from 'oidc-provider';
import type { ClientRecord } from '../registry/clients.js';

/**
 * The client metadata oidc-provider validates and uses; `skip_consent` (consent.ts) and `web_origins` (cors.ts) are
 * our extra properties, and so is `require_mfa` (src/mfa/requirement.ts). The previous secret of a rotation is not metadata: provider.ts asks the registry for it.
 */
export function clientMetadata(client: ClientRecord): AdapterPayload {
  return {
    client_id: client.clientId,
    ...(client.clientSecret ? { client_secret: client.clientSecret } : {}),
    ...(client.name ? { client_name: client.name } : {}),
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    grant_types: client.grantTypes,
    response_types: client.grantTypes.includes('authorization_code') ? ['code'] : [],
    token_endpoint_auth_method: client.tokenEndpointAuthMethod as AdapterPayload['token_endpoint_auth_method'],
    application_type: client.applicationType,
    dpop_bound_access_tokens: client.requireDpop,
    require_pushed_authorization_requests: client.requirePar,
    skip_consent: client.skipConsent,
    web_origins: client.webOrigins,
    require_mfa: client.requireMfa,
    ...(client.backchannelLogoutUri
      ? { backchannel_logout_uri: client.backchannelLogoutUri, backchannel_logout_session_required: client.backchannelLogoutSessionRequired }
      : {}),
  };
}
