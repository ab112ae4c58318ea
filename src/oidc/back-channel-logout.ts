import type Provider from 'oidc-provider';
import type { BackChannel, LogoutDelivery } from '../accounts/sessions.js';
import type { Clients } from '../registry/clients.js';

/** oidc-provider's Client#backchannelLogout, which its type definitions leave out. */
type LogoutCapableClient = { backchannelLogoutUri?: string; backchannelLogout(sub: string, sid?: string): Promise<void> };

/** Why a delivery failed; for a network error undici's cause says more than its "fetch failed". */
function describeFailure(error: unknown): string {
  const { message, cause } = error as { message?: string; cause?: { message?: string } };
  return cause?.message ? `${message}: ${cause.message}` : message ?? String(error);
}

/**
 * OpenID Connect Back-Channel Logout 1.0 §2.5: oidc-provider signs the logout token (typ logout+jwt, iss, aud, iat,
 * jti, events, sub, and sid when the client requires it; never a nonce) with the current signing key and POSTs it.
 * Deliveries run in parallel, each bounded by oidc-provider's 2.5 s timeout; one failing client does not stop the
 * others. The provider is only asked for when some client has a back-channel logout URI.
 */
export type ProviderSource = () => Provider | Promise<Provider>;

export function createBackChannel(deps: { clients: Clients; provider: ProviderSource }): BackChannel {
  return {
    async send(accountId, sessionClients) {
      const registered = await Promise.all(sessionClients.map(async (target) => ({ target, client: await deps.clients.find(target.clientId) })));
      const targets = registered.filter(({ client }) => client?.backchannelLogoutUri).map(({ target }) => target);
      if (targets.length === 0) return [];
      let provider: Provider;
      try {
        provider = await deps.provider();
      } catch (error) {
        return targets.map(({ clientId, sid }) => ({ clientId, sid, isDelivered: false, error: describeFailure(error) }));
      }
      return Promise.all(targets.map(async ({ clientId, sid }): Promise<LogoutDelivery> => {
        try {
          const client = await provider.Client.find(clientId) as unknown as LogoutCapableClient | undefined;
          if (!client?.backchannelLogoutUri) throw new Error('the client no longer has a back-channel logout URI');
          await client.backchannelLogout(accountId, sid ?? undefined);
          return { clientId, sid, isDelivered: true };
        } catch (error) {
          return { clientId, sid, isDelivered: false, error: describeFailure(error) };
        }
      }));
    },
  };
}

/** RP-initiated logout sends its logout tokens inside oidc-provider, which reports a failure only as an event. */
export function logBackChannelFailures(provider: Provider, log: (line: string) => void): void {
  provider.on('backchannel.error', (_ctx, error, client) => {
    log(`latchkey: back-channel logout to client ${client.clientId} failed: ${describeFailure(error)}`);
  });
}
