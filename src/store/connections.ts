import { isStorableText, isUniqueViolation, type Database } from '../database.js';

export type LinkByEmail = 'verified' | 'never';

/** An upstream OpenID Connect provider as stored; the client secret stays sealed here (federation/secret-box.ts). */
export type StoredConnection = {
  id: string;
  name: string;
  issuer: string;
  clientId: string;
  clientSecretSealed: string | null;
  scopes: string[];
  createUsers: boolean;
  linkByEmail: LinkByEmail;
  /** Lower-case domains whose (verified) emails may use the connection; empty: any. */
  emailDomains: string[];
  useUserinfo: boolean;
  createdAt: number;
  updatedAt: number;
};

type ConnectionRow = {
  id: string;
  name: string;
  issuer: string;
  client_id: string;
  client_secret_encrypted: string | null;
  scopes: string;
  create_users: boolean | number;
  link_by_email: string;
  email_domains: string;
  use_userinfo: boolean | number;
  created_at: number | string;
  updated_at: number | string;
};

export class DuplicateConnectionError extends Error {
  constructor(id: string) {
    super(`a connection with id ${id} already exists`);
    this.name = 'DuplicateConnectionError';
  }
}

const words = (text: string) => text.split(' ').filter(Boolean);

function fromRow(row: ConnectionRow): StoredConnection {
  return {
    id: row.id,
    name: row.name,
    issuer: row.issuer,
    clientId: row.client_id,
    clientSecretSealed: row.client_secret_encrypted,
    scopes: words(row.scopes),
    createUsers: Boolean(row.create_users),
    linkByEmail: row.link_by_email === 'verified' ? 'verified' : 'never',
    emailDomains: words(row.email_domains),
    useUserinfo: Boolean(row.use_userinfo),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toRow(connection: StoredConnection): ConnectionRow {
  return {
    id: connection.id,
    name: connection.name,
    issuer: connection.issuer,
    client_id: connection.clientId,
    client_secret_encrypted: connection.clientSecretSealed,
    scopes: connection.scopes.join(' '),
    create_users: connection.createUsers,
    link_by_email: connection.linkByEmail,
    email_domains: connection.emailDomains.join(' '),
    use_userinfo: connection.useUserinfo,
    created_at: connection.createdAt,
    updated_at: connection.updatedAt,
  };
}

export type ConnectionStore = ReturnType<typeof createConnectionStore>;

export function createConnectionStore(database: Database) {
  const { knex, statements } = database;
  return {
    async find(id: string): Promise<StoredConnection | undefined> {
      if (!isStorableText(id)) return undefined;
      const [row] = await statements.rows<ConnectionRow>('select * from connections where id = ?', [id]);
      return row && fromRow(row);
    },
    async list(): Promise<StoredConnection[]> {
      const rows = await knex<ConnectionRow>('connections').orderBy('id');
      return rows.map(fromRow);
    },
    async insert(connection: StoredConnection): Promise<void> {
      try {
        await knex('connections').insert(toRow(connection));
      } catch (error) {
        if (isUniqueViolation(error)) throw new DuplicateConnectionError(connection.id);
        throw error;
      }
    },
    /** Replaces every column but id and created_at; whether the connection existed. */
    async update(connection: StoredConnection): Promise<boolean> {
      const { id: _id, created_at: _created, ...changes } = toRow(connection);
      return (await knex('connections').where({ id: connection.id }).update(changes)) > 0;
    },
    /** Deletes the connection and every identity linked through it, in one transaction; whether it existed. */
    async delete(id: string): Promise<boolean> {
      return knex.transaction(async (trx) => {
        await trx('federated_identities').where({ connection_id: id }).delete();
        return (await trx('connections').where({ id }).delete()) > 0;
      });
    },
  };
}
