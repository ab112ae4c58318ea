import type { Knex } from 'knex';

// The audit trail: one row per security event, kept for AUDIT_RETENTION_DAYS. `details` is JSON text.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_events', (table) => {
    table.increments('id').primary();
    table.string('type', 64).notNullable();
    table.bigInteger('occurred_at').notNullable();
    table.string('account_id', 64);
    table.string('email', 320);
    table.string('client_id', 200);
    table.string('ip', 64);
    table.text('details').notNullable();
    table.index(['occurred_at']);
    table.index(['email']);
    table.index(['account_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_events');
}
