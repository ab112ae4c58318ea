import type { Knex } from 'knex';

// Timestamps are epoch milliseconds (bigint) so SQLite and PostgreSQL compare and sort them the same way.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (table) => {
    table.string('id', 64).primary();
    table.string('email', 320).notNullable().unique();
    table.boolean('email_verified').notNullable().defaultTo(false);
    table.text('password_hash').notNullable();
    table.string('given_name', 200);
    table.string('family_name', 200);
    table.boolean('is_active').notNullable().defaultTo(true);
    table.boolean('is_admin').notNullable().defaultTo(false);
    table.bigInteger('created_at').notNullable();
    table.bigInteger('updated_at').notNullable();
  });

  await knex.schema.createTable('clients', (table) => {
    table.string('client_id', 200).primary();
    table.text('client_secret');
    table.string('name', 200);
    table.text('redirect_uris').notNullable();
    table.text('post_logout_redirect_uris').notNullable();
    table.text('grant_types').notNullable();
    table.string('token_endpoint_auth_method', 64).notNullable();
    table.boolean('is_first_party').notNullable().defaultTo(false);
    table.bigInteger('created_at').notNullable();
  });

  await knex.schema.createTable('apis', (table) => {
    table.string('audience', 500).primary();
    table.text('scopes').notNullable();
    table.bigInteger('created_at').notNullable();
  });

  await knex.schema.createTable('oidc_payloads', (table) => {
    table.string('model', 64).notNullable();
    table.string('id', 255).notNullable();
    table.text('payload').notNullable();
    table.string('grant_id', 255);
    table.string('uid', 255);
    table.string('user_code', 255);
    table.string('account_id', 64);
    table.bigInteger('expires_at');
    table.bigInteger('consumed_at');
    table.primary(['model', 'id']);
    table.index(['grant_id']);
    table.index(['uid']);
    table.index(['user_code']);
    table.index(['account_id']);
    table.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('oidc_payloads');
  await knex.schema.dropTable('apis');
  await knex.schema.dropTable('clients');
  await knex.schema.dropTable('users');
}
