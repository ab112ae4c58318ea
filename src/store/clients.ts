import { isStorableText, isUniqueViolation, type Database } from '../database.js';
import { preparedStatements, rowByColumn } from './prepared-statements.js';

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
  createdAt: number;
};

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
  created_at: number | string;
};

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
    createdAt: Number(row.created_at),
  };
}

export type ClientStore = ReturnType<typeof createClientStore>;

export function createClientStore(database: Database) {
  const statements = preparedStatements(database);
  const lookupClient = statements.lookup<ClientRow>(rowByColumn('clients', 'client_id'));
  return {
    async find(clientId: string): Promise<Client | undefined> {
      if (!isStorableText(clientId)) return undefined;
      const row = await lookupClient([clientId]);
      return row && fromRow(row);
    },
    async list(): Promise<Client[]> {
      const rows = await database<ClientRow>('clients').orderBy('client_id');
      return rows.map(fromRow);
    },
    async insert(client: Client): Promise<void> {
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
        created_at: client.createdAt,
      };
      try {
        await database('clients').insert(row);
      } catch (error) {
        if (isUniqueViolation(error)) throw new DuplicateClientError(client.clientId);
        throw error;
      }
    },
    /** Returns whether a client was deleted. */
    async delete(clientId: string): Promise<boolean> {
      return (await database('clients').where({ client_id: clientId }).delete()) > 0;
    },
  };
}
