import type { Knex } from 'knex';

// Which APIs (RFC 8707 resource servers) each client may obtain access tokens for, and which of their scopes
// (RFC 9700 §2.3: least privilege). A row with empty `scopes` allows the audience alone. No rows are created for the
// clients that exist already: after this migration they get no API tokens until an operator runs
// `latchkey clients update --client-id ID --api AUD[:scopes]` (README, "Upgrading"). Deleting a client or an API
// deletes its rows, so a client or API registered again under the same name starts with nothing.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('client_apis', (table) => {
    table.string('client_id', 200).notNullable().references('client_id').inTable('clients').onDelete('CASCADE');
    table.string('audience', 500).notNullable().references('audience').inTable('apis').onDelete('CASCADE');
    table.text('scopes').notNullable();
    table.primary(['client_id', 'audience']);
    table.index(['audience']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('client_apis');
}
