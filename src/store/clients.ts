import { isStorableText, isUniqueViolation, type Database } from '../database.js';
import { rowByColumn } from './prepared-statements.js';

export type Client = {
  clientId: string;
  clientSecret: string | null;
  name: string | null;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: string[];
  tokenEndpointAuthMethod: string;
  isFirstParty: boolean;
  backchannelLogoutUri: string | null;
  backchannelLogoutSessionRequired: boolean;
  /** The app's users must give a second factor even when the global MFA policy is optional (migration 0011). */
  requireMfa: boolean;
  createdAt: number;
};

/** An API a client may obtain access tokens for, and the scopes of it the client may ask for (none: the audience alone). */
export type ApiAccess = { audience: string; scopes: string[] };

/** A registered API as one client sees it: `allowedScopes` is null when the client may not use the API at all. */
export type ApiForClient = { audience: string; scopes: string[]; allowedScopes: string[] | null };

/** What `update` may change; absent fields stay as they are, `apis` replaces the whole list. */
export type ClientChanges = { name?: string | null; isFirstParty?: boolean; requireMfa?: boolean; apis?: ApiAccess[] };

type ClientRow = {
  client_id: string;
  client_secret: string | null;
  name: string | null;
  redirect_uris: string;
  post_logout_redirect_uris: string;
  grant_types: string;
  token_endpoint_auth_method: string;
  is_first_party: boolean | number;
  backchannel_logout_uri: string | null;
  backchannel_logout_session_required: boolean | number;
  require_mfa: boolean | number;
  created_at: number | string;
};

type ApiForClientRow = { audience: string; scopes: string; allowed_scopes: string | null };
type ClientApiRow = { client_id: string; audience: string; scopes: string };

const scopeList = (text: string) => text.split(' ').filter(Boolean);
const apiRows = (clientId: string, apis: ApiAccess[]): ClientApiRow[] =>
  apis.map((api) => ({ client_id: clientId, audience: api.audience, scopes: api.scopes.join(' ') }));

export class DuplicateClientError extends Error {
  constructor(clientId: string) {
    super(`a client with id ${clientId} already exists`);
    this.name = 'DuplicateClientError';
  }
}

function fromRow(row: ClientRow): Client {
  return {
    clientId: row.client_id,
    clientSecret: row.client_secret,
    name: row.name,
    redirectUris: JSON.parse(row.redirect_uris),
    postLogoutRedirectUris: JSON.parse(row.post_logout_redirect_uris),
    grantTypes: JSON.parse(row.grant_types),
    tokenEndpointAuthMethod: row.token_endpoint_auth_method,
    isFirstParty: Boolean(row.is_first_party),
    backchannelLogoutUri: row.backchannel_logout_uri,
    backchannelLogoutSessionRequired: Boolean(row.backchannel_logout_session_required),
    requireMfa: Boolean(row.require_mfa),
    createdAt: Number(row.created_at),
  };
}

export type ClientStore = ReturnType<typeof createClientStore>;

export function createClientStore(database: Database) {
  const { knex, statements } = database;
  const lookupClient = statements.lookup<ClientRow>(rowByColumn('clients', 'client_id'));
  // Every token request for an API reads the API and the client's access to it in one statement.
  const lookupApiForClient = statements.lookup<ApiForClientRow>({
    one: `select apis.audience, apis.scopes, client_apis.scopes as allowed_scopes from apis
      left join client_apis on client_apis.audience = apis.audience and client_apis.client_id = ?
      where apis.audience = ?`,
    many: `select keys.key as key_index, apis.audience, apis.scopes, client_apis.scopes as allowed_scopes from json_each(?) as keys
      join apis on apis.audience = keys.value ->> 1
      left join client_apis on client_apis.audience = apis.audience and client_apis.client_id = keys.value ->> 0`,
  });
  return {
    async find(clientId: string): Promise<Client | undefined> {
      if (!isStorableText(clientId)) return undefined;
      const row = await lookupClient([clientId]);
      return row && fromRow(row);
    },
    async list(): Promise<Client[]> {
      const rows = await knex<ClientRow>('clients').orderBy('client_id');
      return rows.map(fromRow);
    },
    /** The API registered as `audience`, with what `clientId` may obtain for it; undefined when no such API. */
    async findApiForClient(clientId: string, audience: string): Promise<ApiForClient | undefined> {
      if (!isStorableText(clientId) || !isStorableText(audience)) return undefined;
      const row = await lookupApiForClient([clientId, audience]);
      return row && {
        audience: row.audience,
        scopes: scopeList(row.scopes),
        allowedScopes: row.allowed_scopes === null ? null : scopeList(row.allowed_scopes),
      };
    },
    /** The APIs each client (or only `clientId`) may use, by client id; clients without any are absent. */
    async listApis(clientId?: string): Promise<Map<string, ApiAccess[]>> {
      const rows = await knex<ClientApiRow>('client_apis')
        .modify((query) => (clientId === undefined ? query : query.where({ client_id: clientId })))
        .orderBy(['client_id', 'audience']);
      const byClient = new Map<string, ApiAccess[]>();
      for (const row of rows) {
        byClient.set(row.client_id, [...(byClient.get(row.client_id) ?? []), { audience: row.audience, scopes: scopeList(row.scopes) }]);
      }
      return byClient;
    },
    /** Inserts the client and the APIs it may use, together. */
    async insert(client: Client, apis: ApiAccess[] = []): Promise<void> {
      const row: ClientRow = {
        client_id: client.clientId,
        client_secret: client.clientSecret,
        name: client.name,
        redirect_uris: JSON.stringify(client.redirectUris),
        post_logout_redirect_uris: JSON.stringify(client.postLogoutRedirectUris),
        grant_types: JSON.stringify(client.grantTypes),
        token_endpoint_auth_method: client.tokenEndpointAuthMethod,
        is_first_party: client.isFirstParty,
        backchannel_logout_uri: client.backchannelLogoutUri,
        backchannel_logout_session_required: client.backchannelLogoutSessionRequired,
        require_mfa: client.requireMfa,
        created_at: client.createdAt,
      };
      try {
        await knex.transaction(async (transaction) => {
          await transaction('clients').insert(row);
          if (apis.length > 0) await transaction('client_apis').insert(apiRows(client.clientId, apis));
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw new DuplicateClientError(client.clientId);
        throw error;
      }
    },
    /** Applies `changes` in one transaction; returns whether the client exists. */
    async update(clientId: string, changes: ClientChanges): Promise<boolean> {
      return knex.transaction(async (transaction) => {
        const columns = {
          ...(changes.name !== undefined ? { name: changes.name } : {}),
          ...(changes.isFirstParty !== undefined ? { is_first_party: changes.isFirstParty } : {}),
          ...(changes.requireMfa !== undefined ? { require_mfa: changes.requireMfa } : {}),
        };
        // Locks the row (PostgreSQL) and tells whether it exists, also when no column changes.
        const updated = await transaction('clients').where({ client_id: clientId }).update(Object.keys(columns).length > 0 ? columns : { client_id: clientId });
        if (updated === 0) return false;
        if (changes.apis) {
          await transaction('client_apis').where({ client_id: clientId }).delete();
          if (changes.apis.length > 0) await transaction('client_apis').insert(apiRows(clientId, changes.apis));
        }
        return true;
      });
    },
    /** Deletes the client and, with it (foreign key), the APIs it could use; returns whether it existed. */
    async delete(clientId: string): Promise<boolean> {
      return (await knex('clients').where({ client_id: clientId }).delete()) > 0;
    },
  };
}
