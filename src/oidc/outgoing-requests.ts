import type { Configuration } from 'oidc-provider';
import type { Config } from '../config.js';

/** The only request oidc-provider sends with a `logout_token` form field: Client#backchannelLogout's POST. */
function isLogoutTokenDelivery(init: RequestInit | undefined): boolean {
  return init?.method === 'POST' && init.body instanceof URLSearchParams && init.body.has('logout_token');
}

/**
 * oidc-provider passes every outgoing request (jwks_uri, sector_identifier_uri, logout tokens …) through
 * `fetch` with an undici dispatcher that drops connections to loopback, private and other special-use addresses
 * (SSRF protection). BACKCHANNEL_ALLOW_PRIVATE_TARGETS lifts that for logout-token deliveries only, so a relying
 * party on the same host or network can receive them; every other request keeps the protected dispatcher.
 */
export function createFetch(config: Config): NonNullable<Configuration['fetch']> {
  return (input, init) => {
    if (config.backchannelAllowPrivateTargets && isLogoutTokenDelivery(init)) {
      const { dispatcher: _protected, ...unrestricted } = init as RequestInit & { dispatcher?: unknown };
      return globalThis.fetch(input, unrestricted);
    }
    return globalThis.fetch(input, init);
  };
}
