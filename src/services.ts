import { createAccounts, type Accounts } from './accounts/accounts.js';
import type { Config } from './config.js';
import { migrateDatabase, openDatabase, type Database } from './database.js';
import { createApis, type Apis } from './registry/apis.js';
import { createClients, type Clients } from './registry/clients.js';
import { createApiStore } from './store/apis.js';
import { createClientStore } from './store/clients.js';
import { createOidcPayloadStore, type OidcPayloadStore } from './store/oidc-payloads.js';
import { createUserStore } from './store/users.js';

export type Services = { database: Database; accounts: Accounts; clients: Clients; apis: Apis; payloads: OidcPayloadStore };

/** Opens and migrates the database and builds the services the server and the CLI share. */
export async function openServices(config: Config): Promise<Services> {
  await migrateDatabase(config.databaseUrl, { timeoutMs: config.databaseTimeoutMs });
  const database = openDatabase(config.databaseUrl, { poolSize: config.databasePoolSize, timeoutMs: config.databaseTimeoutMs });
  const payloads = createOidcPayloadStore(database);
  return {
    database,
    payloads,
    accounts: createAccounts({ users: createUserStore(database), payloads }),
    clients: createClients({ clients: createClientStore(database) }),
    apis: createApis({ apis: createApiStore(database) }),
  };
}

