import type Provider from 'oidc-provider';

type Client = InstanceType<Provider['Client']>;

/**
 * A rotated-out client secret keeps working until its window ends (`latchkey clients rotate-secret --keep-old-for`).
 * oidc-provider compares a presented secret with one secret, in Client#compareClientSecret, which its author points
 * to as the place to change how secrets are compared (panva/node-oidc-provider#631). The current secret is tried
 * first, as before; only when it does not match is the registry asked about the previous one, which it compares in
 * constant time and refuses once the window has passed.
 */
export function acceptPreviousSecret(provider: Provider, isPreviousSecret: (clientId: string, presented: string) => Promise<boolean>): void {
  const { prototype } = provider.Client;
  const compareCurrent = prototype.compareClientSecret;
  prototype.compareClientSecret = async function compareClientSecret(this: Client, presented: string) {
    if (await compareCurrent.call(this, presented)) return true;
    return typeof presented === 'string' && isPreviousSecret(this.clientId, presented);
  };
}
