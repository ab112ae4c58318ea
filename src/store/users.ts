import { isStorableText, isUniqueViolation, type Database } from '../database.js';
import { rowByColumn } from './prepared-statements.js';
import type { Transaction } from './transactions.js';

export type User = {
  id: string;
  email: string;
  /** The email's look-alike key (src/accounts/email.ts); unique, null only for look-alikes older than migration 0008. */
  emailSkeleton: string | null;
  emailVerified: boolean;
  /** null: the user signs in only through an upstream connection (docs/federation.md). */
  passwordHash: string | null;
  givenName: string | null;
  familyName: string | null;
  /** OpenID Connect `locale` (BCP 47) and `zoneinfo` (IANA time zone) of the profile scope; migration 0016. */
  locale: string | null;
  zoneinfo: string | null;
  isActive: boolean;
  isAdmin: boolean;
  /** Created through the sign-up page (migration 0010). */
  isSelfRegistered: boolean;
  createdAt: number;
  updatedAt: number;
  /** Sessions signed in before this moment (epoch ms) are refused (migration 0014); null: none is. */
  sessionsValidAfter?: number | null;
};

type UserRow = {
  id: string;
  email: string;
  email_skeleton: string | null;
  email_verified: boolean | number;
  password_hash: string | null;
  given_name: string | null;
  family_name: string | null;
  locale: string | null;
  zoneinfo: string | null;
  is_active: boolean | number;
  is_admin: boolean | number;
  is_self_registered: boolean | number;
  created_at: number | string;
  updated_at: number | string;
  sessions_valid_after?: number | string | null;
};

export class DuplicateEmailError extends Error {
  constructor(email: string) {
    super(`a user with email ${email} already exists`);
    this.name = 'DuplicateEmailError';
  }
}

function fromRow(row: UserRow): User {
  return {
    id: row.id,
    email: row.email,
    emailSkeleton: row.email_skeleton,
    emailVerified: Boolean(row.email_verified),
    passwordHash: row.password_hash,
    givenName: row.given_name,
    familyName: row.family_name,
    locale: row.locale,
    zoneinfo: row.zoneinfo,
    isActive: Boolean(row.is_active),
    isAdmin: Boolean(row.is_admin),
    isSelfRegistered: Boolean(row.is_self_registered),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    sessionsValidAfter: row.sessions_valid_after == null ? null : Number(row.sessions_valid_after),
  };
}

function toRow(user: Partial<User>): Partial<UserRow> {
  const row: Partial<UserRow> = {
    id: user.id,
    email: user.email,
    email_skeleton: user.emailSkeleton,
    email_verified: user.emailVerified,
    password_hash: user.passwordHash,
    given_name: user.givenName,
    family_name: user.familyName,
    locale: user.locale,
    zoneinfo: user.zoneinfo,
    is_active: user.isActive,
    is_admin: user.isAdmin,
    is_self_registered: user.isSelfRegistered,
    created_at: user.createdAt,
    updated_at: user.updatedAt,
    sessions_valid_after: user.sessionsValidAfter,
  };
  return Object.fromEntries(Object.entries(row).filter(([, value]) => value !== undefined));
}

export type UserStore = ReturnType<typeof createUserStore>;

export function createUserStore(database: Database) {
  const { knex, statements } = database;
  const lookupUser = statements.lookup<UserRow>(rowByColumn('users', 'id'));
  return {
    async find(id: string): Promise<User | undefined> {
      if (!isStorableText(id)) return undefined;
      const row = await lookupUser([id]);
      return row && fromRow(row);
    },
    /** `email` must already be normalised by the caller. */
    async findByEmail(email: string): Promise<User | undefined> {
      if (!isStorableText(email)) return undefined;
      const [row] = await statements.rows<UserRow>('select * from users where email = ?', [email]);
      return row && fromRow(row);
    },
    /** The user whose email has this look-alike key (`emailSkeleton` of a normalised email); `trx`: see statements.rows. */
    async findBySkeleton(skeleton: string, trx?: Transaction): Promise<User | undefined> {
      if (!isStorableText(skeleton)) return undefined;
      const [row] = await statements.rows<UserRow>('select * from users where email_skeleton = ?', [skeleton], trx);
      return row && fromRow(row);
    },
    async list(): Promise<User[]> {
      const rows = await knex<UserRow>('users').orderBy('email');
      return rows.map(fromRow);
    },
    /** In `trx` when given (with the mail or link that goes with the new account). */
    async insert(user: User, trx?: Transaction): Promise<void> {
      try {
        await (trx ?? knex)('users').insert(toRow(user));
      } catch (error) {
        if (isUniqueViolation(error)) throw new DuplicateEmailError(user.email);
        throw error;
      }
    },
    async update(id: string, changes: Partial<Omit<User, 'id' | 'createdAt'>>, trx?: Transaction): Promise<void> {
      try {
        await (trx ?? knex)('users').where({ id }).update(toRow(changes));
      } catch (error) {
        if (isUniqueViolation(error) && changes.email) throw new DuplicateEmailError(changes.email);
        throw error;
      }
    },
    /** Deletes the user row; rows that belong to the user go with it (their tables reference users ON DELETE CASCADE). */
    async delete(id: string): Promise<boolean> {
      return (await knex('users').where({ id }).delete()) > 0;
    },
  };
}
