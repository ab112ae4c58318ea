import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Provider from 'oidc-provider';
import { createLoginThrottle } from './accounts/login-throttle.js';
import type { Config } from './config.js';
import { isDatabaseReachable } from './database.js';
import { createHttpRoutes } from './http-routes.js';
import { bindRequestsToIssuer, refuseOtherHosts } from './issuer-origin.js';
import { createInteractionRoutes } from './interaction/routes.js';
import { createAdapterFactory } from './oidc/adapter.js';
import { anonymousWriteRoutes, limitAnonymousRequests } from './oidc/anonymous-requests.js';
import { auditProviderEvents } from './oidc/audit-events.js';
import { logBackChannelFailures } from './oidc/back-channel-logout.js';
import { createFindAccount } from './oidc/claims.js';
import { createProviderPages } from './oidc/pages.js';
import { createProvider } from './oidc/provider.js';
import { handleServerErrors } from './oidc/server-errors.js';
import { serveStaticDocuments } from './oidc/static-documents.js';
import { securityHeaders } from './security-headers.js';
import { openServices, type ServiceOptions, type Services } from './services.js';
import {
  ensureCookieSecrets, ensureSigningKey, readSigningKeys, servedSigningKeys, signingKeyRetentionMs, signingKeysFingerprint, type StoredSigningKey,
} from './signing-keys.js';
import { statefulRequestLimit } from './stateful-request-limit.js';
import { createCounterStore } from './store/counters.js';
import { createViews } from './views.js';

export type RunningServer = {
  issuer: string;
  port: number;
  services: Services;
  /**
   * Rebuilds the provider if the keys to serve at `now` changed (another process rotated or retired one, or a key
   * aged out); the timer and SIGHUP call this with the current time.
   */
  reloadSigningKeys(now?: number): Promise<boolean>;
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

export type ServerOptions = Pick<ServiceOptions, 'logDestination'> & {
  /** The clock of the login throttle and the request rate limit (epoch ms): Date.now unless a test moves time. */
  now?: () => number;
};

/** `options.logDestination`: where log lines go (stdout by default; tests capture them). */
export async function startServer(config: Config, options: ServerOptions = {}): Promise<RunningServer> {
  const clock = options.now ?? Date.now;
  // Logout tokens the services send (admin logout, expired sessions) are signed by the provider serving now.
  let serving: Provider | undefined;
  const services = await openServices(config, {
    logDestination: options.logDestination,
    provider: () => {
      if (!serving) throw new Error('the provider has not started');
      return serving;
    },
  });
  const { database, payloads, audit, logger } = services;
  const log = (line: string) => logger.warn(line);
  // The counters live in the database, so every instance and worker process shares them.
  const counters = createCounterStore(database);
  const throttle = createLoginThrottle({ counters, settings: config.loginThrottle, now: clock });
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

  // A cached JWKS must show a new key before the key starts signing: every instance has loaded it at most
  // KEYS_RELOAD_INTERVAL after it was created, and it signs from KEYS_ACTIVATION_DELAY after that.
  const staticDocuments = {
    '/.well-known/openid-configuration': { maxAgeSeconds: 3600 },
    '/.well-known/jwks.json': { maxAgeSeconds: Math.max(0, config.keysActivationDelaySeconds - config.keysReloadIntervalSeconds) },
  };

  // oidc-provider fixes its keystore at construction, so a key rotation builds a new provider. All its state lives
  // in the database, which makes the swap invisible to clients; requests in flight finish on the old one.
  // `served`: in signing order (see servedSigningKeys).
  function buildProvider(served: StoredSigningKey[]): Provider {
    const provider = createProvider({
      config,
      issuer,
      signingKeys: served.map((key) => key.jwk),
      cookieSecrets,
      adapter,
      findAccount,
      clients: services.clients,
      pages,
    });
    handleServerErrors(provider, views, logger);
    logBackChannelFailures(provider, log);
    auditProviderEvents(provider, audit);
    bindRequestsToIssuer(provider, issuer);
    provider.use(securityHeaders({ isHttpsIssuer: issuer.startsWith('https:') }));
    provider.use(refuseOtherHosts({ issuer, openPaths: ['/healthz'], refuse: pages.refuse }));
    // Routes where an anonymous request makes Latchkey store a row: first limited per IP, then in size, before
    // anything is read or written.
    provider.use(statefulRequestLimit({ counters, perMinute: config.statefulRequestsPerIpPerMinute, views, now: clock }));
    provider.use(limitAnonymousRequests({ paths: anonymousWriteRoutes(provider), maxBytes: config.anonymousRequestMaxBytes, refuse: pages.refuse }));
    provider.use(serveStaticDocuments(staticDocuments));
    provider.use(createHttpRoutes({ isDatabaseReachable: () => isDatabaseReachable(database) }));
    provider.use(createInteractionRoutes({ provider, accounts: services.accounts, throttle, audit, views, csrfKey: cookieSecrets.csrfKey }));
    return provider;
  }

  // Retired keys have left the files; aged-out ones are left out here, so the fingerprint changes when either happens.
  const retentionMs = signingKeyRetentionMs(config);
  const servedAt = (now: number) => servedSigningKeys(readSigningKeys(config.keysDir), now, retentionMs);
  const initialKeys = servedAt(Date.now());
  let fingerprint = signingKeysFingerprint(initialKeys);
  serving = buildProvider(initialKeys);
  handle = serving.callback();

  async function reloadSigningKeys(now = Date.now()): Promise<boolean> {
    const served = servedAt(now);
    const current = signingKeysFingerprint(served);
    if (current === fingerprint) return false;
    serving = buildProvider(served);
    handle = serving.callback();
    fingerprint = current;
    logger.info({ event: 'keys.reloaded', signingKid: served[0]?.jwk.kid, publishedKids: served.map((key) => key.jwk.kid) }, 'signing keys reloaded');
    return true;
  }

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
      () => counters.deleteExpired(now, purgeBatchSize),
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
