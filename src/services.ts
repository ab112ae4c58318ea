import type { DestinationStream, Logger } from 'pino';
import { createAccounts, type Accounts } from './accounts/accounts.js';
import { createPasswordPolicy } from './accounts/password-policy.js';
import { createPasswordHasher } from './accounts/passwords.js';
import { createSessions, type Sessions } from './accounts/sessions.js';
import { createAudit, type Audit } from './audit.js';
import type { Config } from './config.js';
import { migrateDatabase, openDatabase, type Database } from './database.js';
import { createLogger } from './logger.js';
import { createBackChannel, type ProviderSource } from './oidc/back-channel-logout.js';
import { createApis, type Apis } from './registry/apis.js';
import { createClients, type Clients } from './registry/clients.js';
import { createApiStore } from './store/apis.js';
import { createAuditEventStore, type AuditEventStore } from './store/audit-events.js';
import { createClientStore } from './store/clients.js';
import { createOidcPayloadStore, type OidcPayloadStore } from './store/oidc-payloads.js';
import { createUserStore } from './store/users.js';
import { hashingConcurrency, threadPoolSize } from './thread-pool.js';

export type Services = {
  database: Database;
  logger: Logger;
  audit: Audit;
  auditEvents: AuditEventStore;
  accounts: Accounts;
  sessions: Sessions;
  clients: Clients;
  apis: Apis;
  payloads: OidcPayloadStore;
};

export type ServiceOptions = {
  /** Where log lines go: stdout unless given (tests capture them; the CLI keeps its stdout clean). */
  logDestination?: DestinationStream;
  /** Signs and sends logout tokens: the server's running provider. */
  provider?: ProviderSource;
};

/**
 * Opens and migrates the database and builds the services the server and the CLI share. Logout tokens are signed
 * and sent by `options.provider` (the server's running provider); a process without one (the CLI) builds its own
 * from KEYS_DIR and ISSUER the first time a session ends for a client with a back-channel logout URI.
 */
export async function openServices(config: Config, options: ServiceOptions = {}): Promise<Services> {
  await migrateDatabase(config.databaseUrl, { timeoutMs: config.databaseTimeoutMs });
  const database = openDatabase(config.databaseUrl, { poolSize: config.databasePoolSize, timeoutMs: config.databaseTimeoutMs });
  const logger = createLogger(config.logLevel, options.logDestination);
  const payloads = createOidcPayloadStore(database);
  const auditEvents = createAuditEventStore(database);
  const apiStore = createApiStore(database);
  const clients = createClients({ clients: createClientStore(database), apis: apiStore, payloads, isProduction: config.isProduction });
  // Loaded on first use: the CLI's other commands then never load oidc-provider at all.
  let logoutOnlyProvider: ReturnType<ProviderSource> | undefined;
  const backChannel = createBackChannel({
    clients,
    provider: options.provider
      ?? (() => (logoutOnlyProvider ??= import('./oidc/logout-only-provider.js').then((module) => module.createLogoutOnlyProvider(config, services)))),
  });
  const sessions = createSessions({ payloads, backChannel });
  const services: Services = {
    database,
    logger,
    audit: createAudit({ events: auditEvents, logger }),
    auditEvents,
    payloads,
    sessions,
    accounts: createAccounts({
      users: createUserStore(database),
      sessions,
      passwordPolicy: createPasswordPolicy({ minLength: config.passwordMinLength }),
      hasher: createPasswordHasher({
        concurrency: hashingConcurrency(config.workers, threadPoolSize(config.threadPoolSize)),
        queueLength: config.passwordHashQueueLength,
      }),
      logger,
    }),
    clients,
    apis: createApis({ apis: apiStore }),
  };
  return services;
}
