import { isStorableText, type Database } from '../database.js';

/** A second factor of an account; `kind` says how it is checked (src/mfa/), 'totp' today. */
export type SecondFactor = {
  id: string;
  accountId: string;
  kind: string;
  label: string | null;
  /** Sealed by the secret box; never clear text. */
  secret: string | null;
  lastUsedStep: number | null;
  /** null while the enrolment waits for its first code. */
  confirmedAt: number | null;
  lastUsedAt: number | null;
  createdAt: number;
};

type FactorRow = {
  id: string; account_id: string; kind: string; label: string | null; secret: string | null;
  last_used_step: number | string | null; confirmed_at: number | string | null; last_used_at: number | string | null; created_at: number | string;
};

const numberOrNull = (value: number | string | null) => (value === null ? null : Number(value));

function fromRow(row: FactorRow): SecondFactor {
  return {
    id: row.id,
    accountId: row.account_id,
    kind: row.kind,
    label: row.label,
    secret: row.secret,
    lastUsedStep: numberOrNull(row.last_used_step),
    confirmedAt: numberOrNull(row.confirmed_at),
    lastUsedAt: numberOrNull(row.last_used_at),
    createdAt: Number(row.created_at),
  };
}

export type SecondFactorStore = ReturnType<typeof createSecondFactorStore>;

/** Second factors and recovery codes (migration 0011). Every single-use step is one conditional statement. */
export function createSecondFactorStore(database: Database) {
  const { knex, statements } = database;
  return {
    async listByAccount(accountId: string): Promise<SecondFactor[]> {
      if (!isStorableText(accountId)) return [];
      const rows = await statements.rows<FactorRow>('select * from second_factors where account_id = ? order by created_at, id', [accountId]);
      return rows.map(fromRow);
    },
    async insert(factor: SecondFactor): Promise<void> {
      await knex('second_factors').insert({
        id: factor.id, account_id: factor.accountId, kind: factor.kind, label: factor.label, secret: factor.secret,
        last_used_step: factor.lastUsedStep, confirmed_at: factor.confirmedAt, last_used_at: factor.lastUsedAt, created_at: factor.createdAt,
      });
    },
    /** Confirms a waiting enrolment, recording the step of the code that confirmed it; false when it was not waiting. */
    async confirm(id: string, step: number, at: number): Promise<boolean> {
      return (await statements.run('update second_factors set confirmed_at = ?, last_used_step = ?, last_used_at = ? where id = ? and confirmed_at is null', [at, step, at, id])) === 1;
    },
    /**
     * Records that the code of time step `step` was used, if no code of that step or a later one was used before:
     * one conditional UPDATE, so of two requests with the same code only one is told yes (RFC 6238 §5.2).
     */
    async useStep(id: string, step: number, at: number): Promise<boolean> {
      return (await statements.run(
        'update second_factors set last_used_step = ?, last_used_at = ? where id = ? and confirmed_at is not null and (last_used_step is null or last_used_step < ?)',
        [step, at, id, step],
      )) === 1;
    },
    /** Deletes the account's factors of `kind` (every kind when absent), confirmed or waiting; returns how many. */
    async deleteByAccount(accountId: string, kind?: string): Promise<number> {
      return knex('second_factors').where({ account_id: accountId }).modify((query) => (kind ? query.where({ kind }) : query)).delete();
    },
    /** Deletes the account's enrolments still waiting for a code. */
    async deleteWaiting(accountId: string): Promise<void> {
      await knex('second_factors').where({ account_id: accountId }).whereNull('confirmed_at').delete();
    },

    /** Replaces the account's recovery codes with these hashes, in one transaction: the old set stops working. */
    async replaceRecoveryCodes(accountId: string, codeHashes: string[], at: number): Promise<void> {
      await knex.transaction(async (transaction) => {
        await transaction('recovery_codes').where({ account_id: accountId }).delete();
        if (codeHashes.length > 0) {
          await transaction('recovery_codes').insert(codeHashes.map((codeHash) => ({ account_id: accountId, code_hash: codeHash, created_at: at })));
        }
      });
    },
    /** Uses up a recovery code: one DELETE, so a code works once however many requests bring it at the same time. */
    async consumeRecoveryCode(accountId: string, codeHash: string): Promise<boolean> {
      if (!isStorableText(accountId)) return false;
      return (await statements.run('delete from recovery_codes where account_id = ? and code_hash = ?', [accountId, codeHash])) === 1;
    },
    async countRecoveryCodes(accountId: string): Promise<number> {
      const [row] = await statements.rows<{ count: number | string }>('select count(*) as count from recovery_codes where account_id = ?', [accountId]);
      return Number(row?.count ?? 0);
    },
    async deleteRecoveryCodes(accountId: string): Promise<number> {
      return knex('recovery_codes').where({ account_id: accountId }).delete();
    },
  };
}
