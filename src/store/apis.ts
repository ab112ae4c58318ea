import { isStorableText, type Database } from '../database.js';
import { rowByColumn } from './prepared-statements.js';

/** A resource server (RFC 8707 resource indicator) that receives JWT access tokens. */
export type Api = {
  audience: string;
  scopes: string[];
  createdAt: number;
};

type ApiRow = { audience: string; scopes: string; created_at: number | string };

function fromRow(row: ApiRow): Api {
  return { audience: row.audience, scopes: row.scopes.split(' ').filter(Boolean), createdAt: Number(row.created_at) };
}

export type ApiStore = ReturnType<typeof createApiStore>;

export function createApiStore(database: Database) {
  const { knex, statements } = database;
  const lookupApi = statements.lookup<ApiRow>(rowByColumn('apis', 'audience'));
  return {
    async find(audience: string): Promise<Api | undefined> {
      if (!isStorableText(audience)) return undefined;
      const row = await lookupApi([audience]);
      return row && fromRow(row);
    },
    async list(): Promise<Api[]> {
      return (await knex<ApiRow>('apis').orderBy('audience')).map(fromRow);
    },
    /** Inserts or replaces the API's scopes. */
    async upsert(api: Api): Promise<void> {
      await knex('apis')
        .insert({ audience: api.audience, scopes: api.scopes.join(' '), created_at: api.createdAt })
        .onConflict('audience')
        .merge(['scopes']);
    },
    async delete(audience: string): Promise<boolean> {
      return (await knex('apis').where({ audience }).delete()) > 0;
    },
    /** Deletes the API only if no client is given it, in one statement; whether it did. */
    async deleteUnused(audience: string): Promise<boolean> {
      const deleted = await knex('apis').where({ audience })
        .whereNotExists(knex('client_apis').select(knex.raw('1')).where('client_apis.audience', audience))
        .delete();
      return deleted > 0;
    },
    /** The clients given the API, by id. */
    async listClientIds(audience: string): Promise<string[]> {
      if (!isStorableText(audience)) return [];
      const rows: Array<{ client_id: string }> = await knex('client_apis').select('client_id').where({ audience }).orderBy('client_id');
      return rows.map((row) => row.client_id);
    },
  };
}
