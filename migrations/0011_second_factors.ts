import type { Knex } from 'knex';

/**
 * Second factors (docs/mfa.md). One table for every kind of factor, so a new kind (passkeys) is one more `kind`
 * value, with its own columns added by its own migration if it needs them:
 * - `kind`: 'totp' today.
 * - `secret`: the factor's secret sealed with the secret box (src/secret-box.ts), never in clear text.
 * - `last_used_step`: the last TOTP time step accepted; a code of that step or an earlier one is refused (replay).
 * - `confirmed_at`: null while an enrolment waits for its first code; only confirmed factors sign anyone in.
 * Recovery codes are stored as hashes, one row each; using one deletes its row. Deleting a user deletes both.
 * Clients get `require_mfa`: that app's users must give a second factor even when the global MFA policy is optional.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('second_factors', (table) => {
    table.string('id', 36).primary();
    table.string('account_id', 64).notNullable().references('id').inTable('users').onDelete('CASCADE');
    table.string('kind', 32).notNullable();
    table.text('label');
    table.text('secret');
    table.bigInteger('last_used_step');
    table.bigInteger('confirmed_at');
    table.bigInteger('last_used_at');
    table.bigInteger('created_at').notNullable();
    table.index(['account_id']);
  });
  await knex.schema.createTable('recovery_codes', (table) => {
    table.string('account_id', 64).notNullable().references('id').inTable('users').onDelete('CASCADE');
    table.string('code_hash', 64).notNullable();
    table.bigInteger('created_at').notNullable();
    table.primary(['account_id', 'code_hash']);
  });
  await knex.schema.alterTable('clients', (table) => {
    table.boolean('require_mfa').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('clients', (table) => {
    table.dropColumn('require_mfa');
  });
  await knex.schema.dropTable('recovery_codes');
  await knex.schema.dropTable('second_factors');
}
