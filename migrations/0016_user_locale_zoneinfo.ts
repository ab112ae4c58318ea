import type { Knex } from 'knex';

/**
 * OpenID Connect Core §5.1 `locale` (a BCP 47 language tag) and `zoneinfo` (an IANA time zone name) of the
 * `profile` scope. Both optional: an account without them simply has no such claim.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (table) => {
    table.string('locale', 35);
    table.string('zoneinfo', 64);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (table) => {
    table.dropColumn('zoneinfo');
    table.dropColumn('locale');
  });
}
