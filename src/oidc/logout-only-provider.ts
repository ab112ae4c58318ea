import { randomBytes } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { Config } from '../config.js';
import type { Services } from '../services.js';
import { readSigningKeys, servedSigningKeys, signingKeyRetentionMs } from '../signing-keys.js';
import { createViews } from '../views.js';
import { createAdapterFactory } from './adapter.js';
import { createFindAccount } from './claims.js';
import { createProviderPages } from './pages.js';
import { createProvider } from './provider.js';

/**
 * For a process that serves no HTTP (the CLI): a provider that only signs and sends logout tokens, with the keys in
 * KEYS_DIR and the configured ISSUER, the `iss` relying parties check. It never sets a cookie, so its cookie keys
 * are throwaway.
 */
export function createLogoutOnlyProvider(config: Config, services: Services): Provider {
  if (!config.issuer) throw new Error('set ISSUER to the server\'s issuer URL to send logout tokens');
  const keys = readSigningKeys(config.keysDir);
  if (keys.length === 0) throw new Error(`no signing keys in ${config.keysDir} (KEYS_DIR) to sign logout tokens with`);
  return createProvider({
    config,
    issuer: config.issuer,
    signingKeys: servedSigningKeys(keys, Date.now(), signingKeyRetentionMs(config)).map((key) => key.jwk),
    cookieSecrets: { cookieKeys: [randomBytes(32).toString('base64url')], csrfKey: '' },
    adapter: createAdapterFactory({ payloads: services.payloads, clients: services.clients }),
    findAccount: createFindAccount(services.accounts),
    clients: services.clients,
    pages: createProviderPages(createViews()),
  });
}
