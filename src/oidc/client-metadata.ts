import type { AdapterPayload } from 'oidc-provider';
import type { ClientRecord } from '../registry/clients.js';

/** The client metadata oidc-provider validates and uses; `skip_consent` and `require_mfa` are our extra properties (consent.ts). */
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
    skip_consent: client.skipConsent,
    require_mfa: client.requireMfa,
    ...(client.backchannelLogoutUri
      ? { backchannel_logout_uri: client.backchannelLogoutUri, backchannel_logout_session_required: client.backchannelLogoutSessionRequired }
      : {}),
  };
}
