import type Provider from 'oidc-provider';
import type { AdapterPayload } from 'oidc-provider';
import type { BackChannel, LogoutDelivery } from '../accounts/sessions.js';
import type { Clients } from '../registry/clients.js';
import { clientMetadata } from './client-metadata.js';
import type { ProviderHost } from './provider-host.js';

/**
 * oidc-provider's Client as built from its metadata: the constructor and #backchannelLogout are both left out of the
 * library's type definitions. `new provider.Client(metadata)` is what its own Client.find does with what the adapter
 * returns (lib/helpers/add_client.js), validation included.
 */
type LogoutCapableClient = { backchannelLogout(sub: string, sid?: string): Promise<void> };
type ClientConstructor = new (metadata: AdapterPayload) => LogoutCapableClient;

/** Why a delivery failed; for a network error undici's cause says more than its "fetch failed". */
function describeFailure(error: unknown): string {
  const { message, cause } = error as { message?: string; cause?: { message?: string } };
  return cause?.message ? `${message}: ${cause.message}` : message ?? String(error);
}

/**
 * OpenID Connect Back-Channel Logout 1.0 §2.5: oidc-provider signs the logout token (typ logout+jwt, iss, aud, iat,
 * jti, events, sub, and sid when the client requires it; never a nonce) with the current signing key and POSTs it.
 * Deliveries run in parallel, each bounded by oidc-provider's 2.5 s timeout; one failing client does not stop the
 * others. Each client is looked up once, in the registry; the provider is only asked for when one of them has a
 * back-channel logout URI, so logging out users of plain apps needs neither ISSUER nor keys in the CLI.
 */
export function createBackChannel(deps: { clients: Clients; providerHost: Pick<ProviderHost, 'current'> }): BackChannel {
  return {
    async send(accountId, sessionClients) {
      const registered = await Promise.all(sessionClients.map(async (target) => ({ ...target, client: await deps.clients.find(target.clientId) })));
      const targets = registered.flatMap(({ clientId, sid, client }) => (client?.backchannelLogoutUri ? [{ clientId, sid, client }] : []));
      if (targets.length === 0) return [];
      let provider: Provider;
      try {
        provider = await deps.providerHost.current();
      } catch (error) {
        return targets.map(({ clientId, sid }) => ({ clientId, sid, isDelivered: false, error: describeFailure(error) }));
      }
      const Client = provider.Client as unknown as ClientConstructor;
      return Promise.all(targets.map(async ({ clientId, sid, client }): Promise<LogoutDelivery> => {
        try {
          await new Client(clientMetadata(client)).backchannelLogout(accountId, sid ?? undefined);
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
