import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Provider from 'oidc-provider';
import type { Config } from './config.js';
import { createHttpRoutes } from './http-routes.js';
import { createInteractionRoutes } from './interaction/routes.js';
import { createAdapterFactory } from './oidc/adapter.js';
import { logBackChannelFailures } from './oidc/back-channel-logout.js';
import { createFindAccount } from './oidc/claims.js';
import { createProviderPages } from './oidc/pages.js';
import { createProvider } from './oidc/provider.js';
import { handleServerErrors } from './oidc/server-errors.js';
import { openServices, type Services } from './services.js';
import { ensureCookieSecrets, ensureSigningKey, orderForSigning, readSigningKeys, signingKeysFingerprint, type StoredSigningKey } from './signing-keys.js';
import { createViews } from './views.js';

export type RunningServer = {
  issuer: string;
  port: number;
  services: Services;
  /** Rebuilds the provider if the key files changed (another process rotated); the timer calls this too. */
  reloadSigningKeys(): Promise<boolean>;
  /**
   * Deletes rows expired at `now` in bounded batches and sends logout tokens for the expired sessions; the timer
   * calls this with the current time.
   */
  purgeExpired(now?: number): Promise<number>;
  close(): Promise<void>;
};

const purgeIntervalMs = 60_000;
const purgeBatchSize = 500;

const log = (line: string) => console.error(line);

export async function startServer(config: Config): Promise<RunningServer> {
  // Logout tokens the services send (admin logout, expired sessions) are signed by the provider serving now.
  let current: Provider | undefined;
  const services = await openServices(config, {
    provider: () => {
      if (!current) throw new Error('the provider has not started');
      return current;
    },
  });
  const { database, payloads } = services;
  const views = createViews();
  const pages = createProviderPages(views);
  const adapter = createAdapterFactory({ payloads, clients: services.clients });
  const findAccount = createFindAccount(services.accounts);
  const cookieSecrets = ensureCookieSecrets(config.keysDir);
  await ensureSigningKey(config.keysDir);
  let handle: http.RequestListener = (_req, res) => {
    res.writeHead(503, { 'content-type': 'text/plain' }).end('starting');
  };

  const server = http.createServer((req, res) => handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  // PORT=0 without ISSUER (tests, tools): the issuer follows the port the OS picked.
  const issuer = config.issuer ?? `http://localhost:${port}`;

  // oidc-provider fixes its keystore at construction, so a key rotation builds a new provider. All its state lives
  // in the database, which makes the swap invisible to clients; requests in flight finish on the old one.
  function buildProvider(keys: StoredSigningKey[]): Provider {
    const provider = createProvider({
      config,
      issuer,
      signingKeys: orderForSigning(keys, Date.now()).map((key) => key.jwk),
      cookieSecrets,
      adapter,
      findAccount,
      apis: services.apis,
      pages,
    });
    handleServerErrors(provider, views);
    logBackChannelFailures(provider, log);
    provider.use(createHttpRoutes(database));
    provider.use(createInteractionRoutes({ provider, accounts: services.accounts, views, csrfKey: cookieSecrets.csrfKey }));
    return provider;
  }

  const initialKeys = readSigningKeys(config.keysDir);
  let fingerprint = signingKeysFingerprint(initialKeys, Date.now());
  current = buildProvider(initialKeys);
  handle = current.callback();

  async function reloadSigningKeys(): Promise<boolean> {
    const keys = readSigningKeys(config.keysDir);
    const currentFingerprint = signingKeysFingerprint(keys, Date.now());
    if (currentFingerprint === fingerprint) return false;
    const rebuilt = buildProvider(keys);
    handle = rebuilt.callback();
    current = rebuilt;
    fingerprint = currentFingerprint;
    return true;
  }

  async function purgeExpired(now = Date.now()): Promise<number> {
    let total = 0;
    for (;;) {
      const { count, deliveries } = await services.sessions.purgeExpired(now, purgeBatchSize);
      for (const failed of deliveries.filter((delivery) => !delivery.isDelivered)) {
        log(`latchkey: back-channel logout of an expired session to client ${failed.clientId} failed: ${failed.error}`);
      }
      total += count;
      if (count < purgeBatchSize) return total;
    }
  }

  const logFailure = (what: string) => (error: unknown) => console.error(`latchkey: ${what} failed: ${(error as Error).message}`);
  const timers = [
    setInterval(() => reloadSigningKeys().catch(logFailure('signing key reload')), config.keysReloadIntervalSeconds * 1000),
    setInterval(() => purgeExpired().catch(logFailure('purge of expired rows')), purgeIntervalMs),
  ];
  for (const timer of timers) timer.unref();

  return {
    issuer,
    port,
    services,
    reloadSigningKeys,
    purgeExpired,
    /** Stops accepting, lets requests in flight finish (for at most SHUTDOWN_TIMEOUT), then closes the pool. */
    async close() {
      for (const timer of timers) clearInterval(timer);
      await new Promise<void>((resolve) => {
        const deadline = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutSeconds * 1000);
        server.close(() => {
          clearTimeout(deadline);
          resolve();
        });
        server.closeIdleConnections();
      });
      await database.destroy();
    },
  };
}
