import type { Knex } from 'knex';

/**
 * When a person changes their password on the account page, every other session ends. A request of such a session
 * that was in flight at that moment saves the session again when it finishes (oidc-provider saves the session at the
 * end of every request that uses it), which would bring it back. Sessions signed in before `sessions_valid_after`
 * (epoch ms) are therefore refused however they survived: by the account pages and by single sign-on alike.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (table) => {
    table.bigInteger('sessions_valid_after');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (table) => {
    table.dropColumn('sessions_valid_after');
  });
}
