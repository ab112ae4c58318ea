import type { Knex } from 'knex';

/**
 * The kinds of app a client can be and how it is held to them: RFC 8252 native apps (`application_type`), DPoP-bound
 * access tokens (RFC 9449 §5.2), pushed authorization requests only (RFC 9126 §6), the browser origins allowed to
 * call the token, userinfo and revocation endpoints (CORS), and the secret being rotated out with the time it stops.
 * And the initial access tokens of dynamic client registration (RFC 7591 §3), stored as SHA-256 digests with the
 * registrations each has left.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('clients', (table) => {
    table.text('application_type').notNullable().defaultTo('web');
    table.boolean('require_dpop').notNullable().defaultTo(false);
    table.boolean('require_par').notNullable().defaultTo(false);
    table.text('web_origins').notNullable().defaultTo('[]');
    table.text('previous_client_secret');
    table.bigInteger('previous_client_secret_expires_at');
  });
  await knex.schema.createTable('registration_tokens', (table) => {
    table.text('token_digest').primary();
    table.integer('uses_left').notNullable();
    table.bigInteger('expires_at').notNullable();
    table.bigInteger('created_at').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('registration_tokens');
  await knex.schema.alterTable('clients', (table) => {
    table.dropColumn('previous_client_secret_expires_at');
    table.dropColumn('previous_client_secret');
    table.dropColumn('web_origins');
    table.dropColumn('require_par');
    table.dropColumn('require_dpop');
    table.dropColumn('application_type');
  });
}
