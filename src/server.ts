import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Provider from 'oidc-provider';
import type { Config } from './config.js';
import { openServices, type ServiceOptions, type Services } from './services.js';
import { deleteExpiredThrottleCounters } from './store/login-throttle.js';

export type RunningServer = {
  issuer: string;
  port: number;
  services: Services;
  /** Rebuilds the provider if the key files changed (another process rotated); the timer calls this too. */
  reloadSigningKeys(): Promise<boolean>;
  /**
   * Deletes rows expired at `now` (oidc-provider rows, throttle counters, audit events past AUDIT_RETENTION_DAYS)
   * in bounded batches and sends logout tokens for the expired sessions; the timer calls this with the current time.
   */
  purgeExpired(now?: number): Promise<number>;
  close(): Promise<void>;
};

const purgeIntervalMs = 60_000;
const purgeBatchSize = 500;

const dayMs = 86_400_000;

/** `options.logDestination`: where log lines go (stdout by default; tests capture them). */
export async function startServer(config: Config, options: Pick<ServiceOptions, 'logDestination'> = {}): Promise<RunningServer> {
  const services = await openServices(config, options);
  const { database, audit, logger, providerHost } = services;
  const log = (line: string) => logger.warn(line);
  await providerHost.ensureKeys();

  // Every request goes to the provider serving now; a key rotation swaps it (requests in flight finish on the old).
  const handlers = new WeakMap<Provider, http.RequestListener>();
  const server = http.createServer((req, res) => {
    providerHost.current().then((provider) => {
      let handle = handlers.get(provider);
      if (!handle) handlers.set(provider, handle = provider.callback());
      handle(req, res);
    }, () => {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('starting');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  // PORT=0 without ISSUER (tests, tools): the issuer follows the port the OS picked.
  const issuer = config.issuer ?? `http://localhost:${port}`;
  providerHost.useIssuer(issuer);
  await providerHost.current();

  async function purgeExpired(now = Date.now()): Promise<number> {
    const auditCutoff = now - config.auditRetentionDays * dayMs;
    const purges = [
      async () => {
        const { count, deliveries } = await services.sessions.purgeExpired(now, purgeBatchSize);
        for (const failed of deliveries.filter((delivery) => !delivery.isDelivered)) {
          log(`latchkey: back-channel logout of an expired session to client ${failed.clientId} failed: ${failed.error}`);
        }
        return count;
      },
      () => deleteExpiredThrottleCounters(database, now, purgeBatchSize),
      () => services.auditEvents.deleteOlderThan(auditCutoff, purgeBatchSize),
    ];
    let total = 0;
    for (const purge of purges) {
      for (;;) {
        const deleted = await purge();
        total += deleted;
        if (deleted < purgeBatchSize) break;
      }
    }
    return total;
  }

  const reloadSigningKeys = () => providerHost.reloadSigningKeys();
  const logFailure = (what: string) => (error: unknown) => logger.error({ err: (error as Error).message }, `${what} failed`);
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
      await audit.settled();
      await database.destroy();
      // stdout is written asynchronously; the last lines must be out before main.ts exits.
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    },
  };
}
