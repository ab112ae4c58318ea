import type { Api, ApiStore } from '../store/apis.js';
import { absoluteUri, RegistryError } from './client-rules.js';

export type Apis = ReturnType<typeof createApis>;

export function createApis(deps: { apis: ApiStore; now?: () => number }) {
  const { apis } = deps;
  const now = deps.now ?? Date.now;

  return {
    /**
     * Registers (or updates the scopes of) a resource server. RFC 8707 §2: a resource indicator is an absolute
     * URI without a fragment (nor credentials); it becomes the `aud` of the JWT access tokens issued for it.
     */
    async register(audience: string, scopes: string[]): Promise<Api> {
      absoluteUri(audience, 'audience');
      for (const scope of scopes) {
        if (!/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(scope)) throw new RegistryError(`"${scope}" is not a valid scope name`);
        if (['openid', 'offline_access', 'profile', 'email'].includes(scope)) {
          throw new RegistryError(`"${scope}" is an OpenID Connect scope and cannot be an API scope`);
        }
      }
      const api: Api = { audience, scopes: [...new Set(scopes)], createdAt: now() };
      await apis.upsert(api);
      return (await apis.find(audience)) ?? api;
    },

    /**
     * Deletes an API. While clients are given it, it is refused unless `force`, which takes it from them (their
     * rows in client_apis go with the API). Access tokens already issued for it are JWTs the API verifies offline:
     * they stay valid until they expire; no new one is issued, and no refresh token gets one any more.
     */
    async delete(audience: string, options: { force?: boolean } = {}): Promise<{ api: Api; removedFrom: string[] }> {
      const api = await apis.find(audience);
      if (!api) throw new RegistryError(`no API ${audience} is registered`);
      if (!options.force) {
        if (await apis.deleteUnused(audience)) return { api, removedFrom: [] };
        const clientIds = await apis.listClientIds(audience);
        // Taken from its last client, or deleted, since: ask again.
        if (clientIds.length === 0) return this.delete(audience, options);
        throw new RegistryError(`API ${audience} is given to ${clientIds.length} client${clientIds.length === 1 ? '' : 's'} (${clientIds.join(', ')}): `
          + 'take it from them (clients update --client-id ID --api …) or delete it with --force');
      }
      const removedFrom = await apis.listClientIds(audience);
      if (!(await apis.delete(audience))) throw new RegistryError(`no API ${audience} is registered`);
      return { api, removedFrom };
    },
    find: apis.find,
    list: apis.list,
  };
}
