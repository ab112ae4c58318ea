import { isStorableText, isUniqueViolation, type Database } from '../database.js';

/** A passkey: a second_factors row of kind 'passkey' with its WebAuthn columns (migration 0017). */
export type StoredPasskey = {
  id: string;
  accountId: string;
  label: string;
  /** base64url, unique across every account. */
  credentialId: string;
  /** The COSE public key, base64url. */
  publicKey: string;
  signCount: number;
  transports: string[];
  lastUsedAt: number | null;
  createdAt: number;
};

type PasskeyRow = {
  id: string; account_id: string; label: string | null; credential_id: string; public_key: string; sign_count: number | string | null;
  transports: string | null; last_used_at: number | string | null; created_at: number | string;
};

function readTransports(text: string | null): string[] {
  try {
    const parsed: unknown = JSON.parse(text ?? '[]');
    return Array.isArray(parsed) ? parsed.filter((item): item is string => typeof item === 'string') : [];
  } catch {
    return [];
  }
}

const fromRow = (row: PasskeyRow): StoredPasskey => ({
  id: row.id, accountId: row.account_id, label: row.label ?? 'Passkey', credentialId: row.credential_id, publicKey: row.public_key,
  signCount: Number(row.sign_count ?? 0), transports: readTransports(row.transports),
  lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at), createdAt: Number(row.created_at),
});

export type PasskeyStore = ReturnType<typeof createPasskeyStore>;

/** Passkeys (rows of second_factors) and the outstanding WebAuthn challenges. */
export function createPasskeyStore(database: Database) {
  const { knex, statements } = database;
  return {
    async listByAccount(accountId: string): Promise<StoredPasskey[]> {
      if (!isStorableText(accountId)) return [];
      const rows = await statements.rows<PasskeyRow>(
        "select * from second_factors where account_id = ? and kind = 'passkey' and confirmed_at is not null order by created_at, id", [accountId]);
      return rows.map(fromRow);
    },
    async findByCredentialId(credentialId: string): Promise<StoredPasskey | undefined> {
      if (!isStorableText(credentialId)) return undefined;
      const [row] = await statements.rows<PasskeyRow>(
        "select * from second_factors where credential_id = ? and kind = 'passkey' and confirmed_at is not null", [credentialId]);
      return row ? fromRow(row) : undefined;
    },
    /** Inserts a confirmed passkey; false when its credential id is registered already (the unique key decides). */
    async insert(passkey: StoredPasskey): Promise<boolean> {
      try {
        await knex('second_factors').insert({
          id: passkey.id, account_id: passkey.accountId, kind: 'passkey', label: passkey.label, secret: null, last_used_step: null,
          confirmed_at: passkey.createdAt, last_used_at: null, created_at: passkey.createdAt, credential_id: passkey.credentialId,
          public_key: passkey.publicKey, sign_count: passkey.signCount, transports: JSON.stringify(passkey.transports),
        });
        return true;
      } catch (error) {
        if (isUniqueViolation(error)) return false;
        throw error;
      }
    },
    async recordUse(id: string, signCount: number, at: number): Promise<void> {
      await statements.run('update second_factors set sign_count = ?, last_used_at = ? where id = ?', [signCount, at, id]);
    },
    async rename(accountId: string, id: string, label: string): Promise<boolean> {
      if (!isStorableText(id)) return false;
      return (await knex('second_factors').where({ id, account_id: accountId, kind: 'passkey' }).update({ label })) === 1;
    },
    async delete(accountId: string, id: string): Promise<boolean> {
      if (!isStorableText(id)) return false;
      return (await knex('second_factors').where({ id, account_id: accountId, kind: 'passkey' }).delete()) === 1;
    },

    /** Stores the one outstanding challenge (its hash) of `binding`, replacing an earlier one; drops expired ones. */
    async putChallenge(binding: string, challengeHash: string, expiresAt: number, now: number): Promise<void> {
      await knex('webauthn_challenges').where('expires_at', '<=', now).delete();
      await knex('webauthn_challenges').insert({ binding, challenge_hash: challengeHash, expires_at: expiresAt })
        .onConflict('binding').merge(['challenge_hash', 'expires_at']);
    },
    /** Uses up the challenge: one DELETE, so of two requests with the same challenge only one is told yes. */
    async consumeChallenge(binding: string, challengeHash: string, now: number): Promise<boolean> {
      if (!isStorableText(binding)) return false;
      return (await statements.run('delete from webauthn_challenges where binding = ? and challenge_hash = ? and expires_at > ?',
        [binding, challengeHash, now])) === 1;
    },
  };
}
