import { isStorableText, isUniqueViolation, type Database } from '../database.js';
import type { Transaction } from './transactions.js';

/** A person at an upstream provider (connection, upstream `sub`) linked to a local user. */
export type FederatedIdentity = { connectionId: string; subject: string; userId: string; createdAt: number; lastUsedAt: number };

type IdentityRow = { connection_id: string; subject: string; user_id: string; created_at: number | string; last_used_at: number | string };

export class DuplicateIdentityError extends Error {
  constructor() {
    super('this upstream identity or this user is already linked through the connection');
    this.name = 'DuplicateIdentityError';
  }
}

const fromRow = (row: IdentityRow): FederatedIdentity => ({
  connectionId: row.connection_id,
  subject: row.subject,
  userId: row.user_id,
  createdAt: Number(row.created_at),
  lastUsedAt: Number(row.last_used_at),
});

const toRow = (identity: FederatedIdentity): IdentityRow => ({
  connection_id: identity.connectionId,
  subject: identity.subject,
  user_id: identity.userId,
  created_at: identity.createdAt,
  last_used_at: identity.lastUsedAt,
});

export type FederatedIdentityStore = ReturnType<typeof createFederatedIdentityStore>;

export function createFederatedIdentityStore(database: Database) {
  const { knex, statements } = database;
  return {
    async find(connectionId: string, subject: string): Promise<FederatedIdentity | undefined> {
      if (!isStorableText(connectionId) || !isStorableText(subject)) return undefined;
      const [row] = await statements.rows<IdentityRow>(
        'select * from federated_identities where connection_id = ? and subject = ?', [connectionId, subject]);
      return row && fromRow(row);
    },
    async listByUser(userId: string): Promise<FederatedIdentity[]> {
      const rows = await knex<IdentityRow>('federated_identities').where({ user_id: userId }).orderBy('connection_id');
      return rows.map(fromRow);
    },
    async list(): Promise<FederatedIdentity[]> {
      const rows = await knex<IdentityRow>('federated_identities').orderBy(['user_id', 'connection_id']);
      return rows.map(fromRow);
    },
    /** In `trx` when given: a new user and its identity are written together, both or neither. */
    async insert(identity: FederatedIdentity, trx?: Transaction): Promise<void> {
      try {
        await (trx ?? knex)('federated_identities').insert(toRow(identity));
      } catch (error) {
        if (isUniqueViolation(error)) throw new DuplicateIdentityError();
        throw error;
      }
    },
    async touch(connectionId: string, subject: string, at: number): Promise<void> {
      await knex('federated_identities').where({ connection_id: connectionId, subject }).update({ last_used_at: at });
    },
    /** Whether a link was removed. */
    async delete(connectionId: string, userId: string): Promise<boolean> {
      return (await knex('federated_identities').where({ connection_id: connectionId, user_id: userId }).delete()) > 0;
    },
  };
}
