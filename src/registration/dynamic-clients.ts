import { RegistryError, type ClientSettings } from '../registry/client-rules.js';
import type { Clients } from '../registry/clients.js';

type Metadata = Record<string, unknown>;

const strings = (value: unknown): string[] | undefined =>
  Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : undefined;

/** RFC 7591 §2 metadata a registering client may set, as the registry's settings; what it may not is refused. */
function settingsOf(metadata: Metadata): ClientSettings {
  // A client registering itself never decides what only an operator may: skipping the consent page (the user would
  // not be asked what it gets), where Latchkey POSTs logout tokens (a request to any address it names), or APIs.
  if (metadata.skip_consent === true) throw new RegistryError('skip_consent is set by an operator, not at registration');
  if (metadata.backchannel_logout_uri !== undefined) {
    throw new RegistryError('backchannel_logout_uri is set by an operator (latchkey clients update), not at registration');
  }
  return {
    name: typeof metadata.client_name === 'string' ? metadata.client_name : null,
    redirectUris: strings(metadata.redirect_uris) ?? [],
    postLogoutRedirectUris: strings(metadata.post_logout_redirect_uris) ?? [],
    grantTypes: strings(metadata.grant_types) ?? [],
    applicationType: typeof metadata.application_type === 'string' ? metadata.application_type : 'web',
    requireDpop: metadata.dpop_bound_access_tokens === true,
    requirePar: metadata.require_pushed_authorization_requests === true,
    webOrigins: strings(metadata.web_origins) ?? [],
  };
}

const authMethods = ['none', 'client_secret_basic', 'client_secret_post'];

export type DynamicClients = ReturnType<typeof createDynamicClients>;

/**
 * Dynamic client registration (RFC 7591) and management (RFC 7592) write through the registry: oidc-provider checks
 * the metadata against its schema and hands it here, and the registry applies every rule `latchkey clients create`
 * and `update` apply. A registered client gets no API and no skipped consent: an operator grants those.
 */
export function createDynamicClients(clients: Clients) {
  return {
    async save(clientId: string, metadata: Metadata): Promise<void> {
      const method = metadata.token_endpoint_auth_method;
      if (typeof method !== 'string' || !authMethods.includes(method)) {
        throw new RegistryError(`token_endpoint_auth_method must be one of ${authMethods.join(', ')}`);
      }
      const isPublic = method === 'none';
      const settings = settingsOf(metadata);
      const existing = await clients.find(clientId);
      if (!existing) {
        await clients.register({
          ...settings,
          name: settings.name ?? undefined,
          clientId,
          isPublic,
          clientSecret: isPublic ? undefined : String(metadata.client_secret),
          apis: [],
          skipConsent: false,
        });
        return;
      }
      if (isPublic !== (existing.clientSecret === null)) {
        throw new RegistryError('a client cannot change between public and confidential');
      }
      await clients.update(clientId, settings);
    },
    delete: (clientId: string) => clients.delete(clientId),
  };
}
