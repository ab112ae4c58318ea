import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Audit } from '../audit.js';
import { supportedGrantTypes } from '../registry/client-rules.js';

type TokenEntity = { accountId?: string; clientId?: string };

/** Who and where, from whatever the provider has loaded for this request; never a token, code or secret. */
function subject(ctx: KoaContextWithOIDC) {
  const oidc = ctx.oidc;
  const entities = (oidc?.entities ?? {}) as Record<string, TokenEntity | undefined>;
  const token = entities.RefreshToken ?? entities.AccessToken ?? entities.AuthorizationCode ?? entities.ClientCredentials;
  return {
    accountId: oidc?.account?.accountId ?? token?.accountId ?? oidc?.session?.accountId ?? null,
    clientId: oidc?.client?.clientId ?? token?.clientId ?? null,
    ip: ctx.ip,
  };
}

/**
 * The grant type asked for, when it is one Latchkey supports. Anything else is recorded as `unsupported`: a failed
 * token request needs no credentials, and the row is kept for AUDIT_RETENTION_DAYS, so nothing of the request's own
 * size may be stored.
 */
function grantType(ctx: KoaContextWithOIDC): string | undefined {
  const asked = ctx.oidc?.params?.grant_type;
  if (typeof asked !== 'string') return undefined;
  return (supportedGrantTypes as readonly string[]).includes(asked) ? asked : 'unsupported';
}

/**
 * Turns oidc-provider's events into audit events: tokens issued, refreshed and revoked, replayed codes and refresh
 * tokens, failed token requests and logouts. oidc-provider emits them synchronously; recording does not block.
 */
export function auditProviderEvents(provider: Provider, audit: Audit): void {
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const type = grantType(ctx) === 'refresh_token' ? 'token.refreshed' : 'token.issued';
    void audit.record({ type, ...subject(ctx), details: { grantType: grantType(ctx) } });
  });

  provider.on('grant.error', (ctx: KoaContextWithOIDC, error: { error?: string; error_detail?: string }) => {
    // A device polling while its user signs in (RFC 8628 §3.5) is waiting, not failing: one row per poll would flood the log.
    if (error.error === 'authorization_pending') return;
    // oidc-provider (and our adapter, for a lost consume race) detail a replay as "… already used" or "… already
    // consumed"; the grant has been revoked by then.
    const isReplay = error.error === 'invalid_grant' && /already (used|consumed)/.test(error.error_detail ?? '');
    void audit.record({
      type: isReplay ? 'token.replay_detected' : 'token.failure',
      ...subject(ctx),
      details: { grantType: grantType(ctx), error: error.error, detail: error.error_detail },
    });
  });

  provider.on('grant.revoked', (ctx: KoaContextWithOIDC, grantId: string) => {
    // The grant id names the grant; it is not a credential and cannot be exchanged for anything.
    const type = ctx.oidc?.route === 'revocation' ? 'token.revoked' : 'grant.revoked';
    void audit.record({ type, ...subject(ctx), details: { grantId, route: ctx.oidc?.route } });
  });

  // Dynamic client registration (RFC 7591/7592): which client registered, changed or deleted itself, from where.
  // A refusal keeps only its error code: its description may quote anything the registration sent.
  const registrationEvent = (type: string) => (ctx: KoaContextWithOIDC, client: { clientId: string }) => {
    void audit.record({ type, clientId: client.clientId, ip: ctx.ip });
  };
  provider.on('registration_create.success', registrationEvent('client.registered'));
  provider.on('registration_update.success', registrationEvent('client.registration_updated'));
  provider.on('registration_delete.success', registrationEvent('client.registration_deleted'));
  provider.on('registration_create.error', (ctx: KoaContextWithOIDC, error: { error?: string }) => {
    void audit.record({ type: 'client.registration_refused', ip: ctx.ip, details: { error: error.error } });
  });

  provider.on('end_session.success', (ctx: KoaContextWithOIDC) => {
    void audit.record({ type: 'logout', ...subject(ctx) });
  });
}
