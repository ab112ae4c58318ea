import type { Knex } from 'knex';

// OpenID Connect Back-Channel Logout 1.0 §2.2: where a client receives logout tokens, and whether it needs `sid`.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('clients', (table) => {
    table.text('backchannel_logout_uri');
    table.boolean('backchannel_logout_session_required').notNullable().defaultTo(true);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('clients', (table) => {
    table.dropColumn('backchannel_logout_session_required');
    table.dropColumn('backchannel_logout_uri');
  });
}
