import { createAccounts, type Accounts } from './accounts/accounts.js';
import { createSessions, type Sessions } from './accounts/sessions.js';
import type { Config } from './config.js';
import { migrateDatabase, openDatabase, type Database } from './database.js';
import type Provider from 'oidc-provider';
import { createBackChannel, type ProviderSource } from './oidc/back-channel-logout.js';
import { createApis, type Apis } from './registry/apis.js';
import { createClients, type Clients } from './registry/clients.js';
import { createApiStore } from './store/apis.js';
import { createClientStore } from './store/clients.js';
import { createOidcPayloadStore, type OidcPayloadStore } from './store/oidc-payloads.js';
import { createUserStore } from './store/users.js';

export type Services = { database: Database; accounts: Accounts; sessions: Sessions; clients: Clients; apis: Apis; payloads: OidcPayloadStore };

/**
 * Opens and migrates the database and builds the services the server and the CLI share. Logout tokens are signed
 * and sent by `options.provider` (the server's running provider); a process without one (the CLI) builds its own
 * from KEYS_DIR and ISSUER the first time a session ends for a client with a back-channel logout URI.
 */
export async function openServices(config: Config, options: { provider?: ProviderSource } = {}): Promise<Services> {
  const database = openDatabase(config.databaseUrl, { poolSize: config.databasePoolSize, timeoutMs: config.databaseTimeoutMs });
  try {
    await migrateDatabase(database);
  } catch (error) {
    await database.destroy();
    throw error;
  }
  const payloads = createOidcPayloadStore(database);
  const clients = createClients({ clients: createClientStore(database), isProduction: config.isProduction });
  // Loaded on first use: the CLI's other commands then never load oidc-provider at all.
  let logoutOnlyProvider: Promise<Provider> | undefined;
  const backChannel = createBackChannel({
    clients,
    provider: options.provider
      ?? (() => (logoutOnlyProvider ??= import('./oidc/logout-only-provider.js').then((module) => module.createLogoutOnlyProvider(config, services)))),
  });
  const sessions = createSessions({ payloads, backChannel });
  const services: Services = {
    database,
    payloads,
    sessions,
    accounts: createAccounts({ users: createUserStore(database), sessions }),
    clients,
    apis: createApis({ apis: createApiStore(database) }),
  };
  return services;
}
