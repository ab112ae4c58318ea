import type { Knex } from 'knex';

/**
 * Passkeys (WebAuthn, docs/mfa.md): one more `kind` ('passkey') of the second_factors table, with its own columns:
 * - `credential_id`: the credential's id (base64url), unique across every account, so one credential can never
 *   be registered twice nor sign in as two people.
 * - `public_key`: the COSE public key (base64url); `sign_count`: the last signature counter the authenticator sent.
 * - `transports`: the transports the browser reported (JSON array), handed back as a hint when signing in.
 * `webauthn_challenges` holds the one outstanding challenge of each ceremony, keyed by what it is bound to (an
 * interaction or a Latchkey session), stored as a hash; using it deletes it, so it works once.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('second_factors', (table) => {
    table.string('credential_id', 1400).unique();
    table.text('public_key');
    table.bigInteger('sign_count');
    table.text('transports');
  });
  await knex.schema.createTable('webauthn_challenges', (table) => {
    table.string('binding', 200).primary();
    table.string('challenge_hash', 64).notNullable();
    table.bigInteger('expires_at').notNullable();
    table.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('webauthn_challenges');
  await knex.schema.alterTable('second_factors', (table) => {
    table.dropUnique(['credential_id']);
    table.dropColumn('transports');
    table.dropColumn('sign_count');
    table.dropColumn('public_key');
    table.dropColumn('credential_id');
  });
}
