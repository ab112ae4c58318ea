import type { Knex } from 'knex';

// The client a grant, code or token was issued to, as a column, so deleting a client can delete everything it was
// issued in one indexed statement. Rows written before this migration carry it only inside the JSON payload
// (`clientId`); they are filled in here. Sessions and interactions have no `clientId` and stay NULL.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('oidc_payloads', (table) => {
    table.string('client_id', 200);
    table.index(['client_id']);
  });
  const clientIdInPayload = knex.client.config.client === 'sqlite3'
    ? "json_extract(payload, '$.clientId')"
    : "payload::json ->> 'clientId'";
  await knex.raw(`update oidc_payloads set client_id = ${clientIdInPayload}`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('oidc_payloads', (table) => {
    table.dropIndex(['client_id']);
    table.dropColumn('client_id');
  });
}
