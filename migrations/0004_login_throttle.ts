import type { Knex } from 'knex';

// The login throttle's counters, shared by every instance and worker process. The column names (key, points,
// expire) are the ones rate-limiter-flexible's PostgreSQL limiter reads and writes; `expire` is epoch milliseconds.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('login_throttle', (table) => {
    table.string('key', 255).primary();
    table.integer('points').notNullable().defaultTo(0);
    table.bigInteger('expire');
    table.index(['expire']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('login_throttle');
}
