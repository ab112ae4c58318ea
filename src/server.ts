import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Provider from 'oidc-provider';
import type { Config } from './config.js';
import { relyingPartyOf } from './mfa/relying-party.js';
import { openServices, type ServiceOptions, type Services } from './services.js';

export type RunningServer = {
  issuer: string;
  port: number;
  services: Services;
  /**
   * Rebuilds the provider if the keys to serve at `now` changed (another process rotated or retired one, or a key
   * aged out); the timer and SIGHUP call this with the current time.
   */
  reloadSigningKeys(now?: number): Promise<boolean>;
  /** The purge the timer runs every minute (maintenance.ts), at `now`. */
  purgeExpired(now?: number): Promise<number>;
  close(): Promise<void>;
};

/** `options`: where log lines go (stdout by default; tests capture them) and the throttles' clock (tests move it). */
export async function startServer(config: Config, options: ServiceOptions = {}): Promise<RunningServer> {
  const services = await openServices(config, options);
  const { providerHost } = services;
  await providerHost.ensureKeys();

  // Every request goes to the provider serving now; a key rotation swaps it (requests in flight finish on the old).
  // A request that arrives while the first one is built waits for it; if that build fails, start-up fails with it.
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
  const passkeySupport = relyingPartyOf(issuer);
  if ('unavailable' in passkeySupport) services.logger.warn({ event: 'passkeys.unavailable' }, passkeySupport.unavailable);
  await providerHost.current();

  const stopMaintenance = services.maintenance.start();

  return {
    issuer,
    port,
    services,
    reloadSigningKeys: (now) => providerHost.reloadSigningKeys(now),
    purgeExpired: services.maintenance.purgeExpired,
    /** Stops accepting, lets requests in flight finish (for at most SHUTDOWN_TIMEOUT), then closes the services. */
    async close() {
      stopMaintenance();
      await new Promise<void>((resolve) => {
        const deadline = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutSeconds * 1000);
        server.close(() => {
          clearTimeout(deadline);
          resolve();
        });
        server.closeIdleConnections();
      });
      await services.close();
    },
  };
}
