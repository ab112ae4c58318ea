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
  };
}
