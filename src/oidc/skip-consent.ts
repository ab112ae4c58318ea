import type { KoaContextWithOIDC } from 'oidc-provider';

/** Claims every ID token carries anyway; oidc-provider's consent prompt never asks for them (prompts/consent.js). */
const claimsNeverAsked = new Set(['sub', 'sid', 'auth_time', 'acr', 'amr', 'iss']);

/**
 * oidc-provider's `loadExistingGrant`, the hook its documentation gives for skipping consent: the grant for the
 * client of this authorization request, as the default one finds it, and for a client registered with
 * --skip-consent (client metadata `skip_consent`) extended, before the consent prompt is checked, with exactly what
 * that prompt would find missing: the OpenID scopes and claims asked for, and of each requested API only the scopes
 * both asked for and given to this client (its resource server's scopes, oidc/api-access.ts). So such a client
 * never reaches the consent page, and gets no more than a user who clicked "Allow" would have given it.
 * The grant is written here, by the authorization request, not by a GET of the interaction page.
 */
export async function loadExistingGrant(ctx: KoaContextWithOIDC) {
  const { oidc } = ctx;
  const client = oidc.client!;
  const grantId = oidc.result?.consent?.grantId || oidc.session!.grantIdFor(client.clientId);
  const existing = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
  const accountId = oidc.account!.accountId;
  // A grant of another account is returned as it is: oidc-provider refuses it ("accountId mismatch").
  if (client['skip_consent'] !== true || (existing && existing.accountId !== accountId)) return existing;
  const grant = existing ?? new oidc.provider.Grant({ accountId, clientId: client.clientId });

  const scopes = new Set(grant.getOIDCScopeEncountered().split(' '));
  const missingScopes = [...oidc.requestParamOIDCScopes].filter((scope) => !scopes.has(scope));
  const claims = new Set(grant.getOIDCClaimsEncountered());
  const missingClaims = [...oidc.requestParamClaims].filter((claim) => !claims.has(claim) && !claimsNeverAsked.has(claim));
  const missingResourceScopes = Object.entries(oidc.resourceServers ?? {}).map(([indicator, resourceServer]) => {
    const available = new Set((resourceServer.scope ?? '').split(' '));
    const granted = new Set(grant.getResourceScopeEncountered(indicator).split(' '));
    return [indicator, [...oidc.requestParamScopes].filter((scope) => available.has(scope) && !granted.has(scope))] as const;
  }).filter(([, missing]) => missing.length > 0);

  if (existing && missingScopes.length === 0 && missingClaims.length === 0 && missingResourceScopes.length === 0) return existing;
  if (missingScopes.length > 0) grant.addOIDCScope(missingScopes.join(' '));
  if (missingClaims.length > 0) grant.addOIDCClaims(missingClaims);
  for (const [indicator, missing] of missingResourceScopes) grant.addResourceScope(indicator, missing.join(' '));
  await grant.save();
  return grant;
}
