import type { Configuration } from 'oidc-provider';

/**
 * oidc-provider's `clientBasedCORS`: which browser origins may read the answers of the token, userinfo, revocation
 * (and introspection and PAR) endpoints for a client. Only the origins the operator registered for it with
 * `--web-origin` (metadata `web_origins`, compared exactly with the Origin header); oidc-provider's default would
 * also let any origin of a public client's redirect URIs in. A refused origin gets invalid_request and no
 * Access-Control-Allow-Origin, so the page that sent it cannot read the answer.
 */
export const clientBasedCORS: NonNullable<Configuration['clientBasedCORS']> = (_ctx, origin, client) => {
  const origins = client['web_origins'];
  return Array.isArray(origins) && origins.includes(origin);
};

export function checkWebOriginsMetadata(value: unknown): boolean {
  return value === undefined || (Array.isArray(value) && value.every((origin) => typeof origin === 'string'));
}
