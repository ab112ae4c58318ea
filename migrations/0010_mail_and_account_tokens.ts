import type { Knex } from 'knex';

/**
 * The mail outbox (a row written in the same transaction as the change it announces, delivered by the sender loop
 * of src/mail/sender.ts) and the single-use links mailed to people (password reset, invitation, email verification),
 * stored only as the SHA-256 of the token. Timestamps are epoch milliseconds.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('mail_outbox', (table) => {
    table.string('id', 64).primary();
    // Which template the mail came from (for `latchkey mail list`), and who it goes to.
    table.string('kind', 64).notNullable();
    table.string('recipient', 320).notNullable();
    table.text('subject').notNullable();
    // Cleared once the mail is delivered or given up on: a mail may carry a link, the outbox keeps it no longer.
    table.text('text_body');
    table.text('html_body');
    // pending → sending (claimed by one sender until lease_until) → sent | failed; back to pending for a retry.
    table.string('status', 16).notNullable();
    table.integer('attempts').notNullable().defaultTo(0);
    table.bigInteger('next_attempt_at').notNullable();
    table.bigInteger('lease_until');
    table.text('last_error');
    table.bigInteger('created_at').notNullable();
    table.bigInteger('sent_at');
    table.index(['status', 'next_attempt_at']);
  });
  await knex.schema.createTable('account_tokens', (table) => {
    table.string('token_hash', 64).primary();
    table.string('purpose', 32).notNullable();
    table.string('user_id', 64).notNullable().references('id').inTable('users').onDelete('CASCADE');
    // A verification link proves this address, not whatever the account's address is when it is clicked.
    table.string('email', 320).notNullable();
    table.bigInteger('expires_at').notNullable();
    table.bigInteger('consumed_at');
    table.bigInteger('created_at').notNullable();
    table.index(['user_id', 'purpose']);
    table.index(['expires_at']);
  });
  await knex.schema.alterTable('users', (table) => {
    // Created through the sign-up page (REQUIRE_VERIFIED_EMAIL holds such an account until its address is verified).
    table.boolean('is_self_registered').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (table) => {
    table.dropColumn('is_self_registered');
  });
  await knex.schema.dropTable('account_tokens');
  await knex.schema.dropTable('mail_outbox');
}
