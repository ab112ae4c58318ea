import type { Knex } from 'knex';

/**
 * Upstream OpenID Connect connections (docs/federation.md) and the identities linked through them. A connection's
 * client secret is stored encrypted (AES-256-GCM under a key in KEYS_DIR), never in the clear. A person who signs in
 * only through a connection has no password: `password_hash` becomes nullable.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('connections', (table) => {
    table.string('id', 64).primary();
    table.string('name', 200).notNullable();
    table.string('issuer', 500).notNullable();
    table.string('client_id', 500).notNullable();
    table.text('client_secret_encrypted');
    table.string('scopes', 1000).notNullable();
    table.boolean('create_users').notNullable();
    table.string('link_by_email', 16).notNullable();
    table.text('email_domains').notNullable();
    table.boolean('use_userinfo').notNullable();
    table.bigInteger('created_at').notNullable();
    table.bigInteger('updated_at').notNullable();
  });
  await knex.schema.createTable('federated_identities', (table) => {
    table.string('connection_id', 64).notNullable();
    table.string('subject', 255).notNullable();
    table.string('user_id', 64).notNullable();
    table.bigInteger('created_at').notNullable();
    table.bigInteger('last_used_at').notNullable();
    // (connection, upstream sub) identifies the person; one local account has at most one identity per connection.
    table.primary(['connection_id', 'subject']);
    table.unique(['connection_id', 'user_id']);
    table.index(['user_id']);
  });
  await knex.schema.alterTable('users', (table) => {
    table.setNullable('password_hash');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex('users').whereNull('password_hash').delete();
  await knex.schema.alterTable('users', (table) => {
    table.dropNullable('password_hash');
  });
  await knex.schema.dropTable('federated_identities');
  await knex.schema.dropTable('connections');
}
