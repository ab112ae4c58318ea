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
    find: apis.find,
    list: apis.list,
  };
}
