import type { Knex } from 'knex';
import { emailSkeleton, normalizeEmail } from '../src/accounts/email.js';

/**
 * Emails are stored in today's normal form (NFKC, lower case) and get a unique look-alike key, the skeleton, so a
 * new account cannot imitate an existing one ("асе@example.com" in Cyrillic next to "ace@example.com").
 *
 * Existing rows: an email whose normal form changed (a full-width one, say) is rewritten unless another account
 * already has that form; both then stay as they were and can sign in as before. Accounts that already look alike
 * are kept too: the oldest holds the skeleton, the others get none. This uses today's normalizeEmail and
 * emailSkeleton; changing either later needs a migration of its own that recomputes these columns.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (table) => {
    table.text('email_skeleton');
  });
  // A plain ASCII email is its own skeleton: one statement covers nearly every row, the loop fixes up the rest.
  await knex('users').update({ email_skeleton: knex.ref('email') });
  const users: Array<{ id: string; email: string }> = await knex('users').select('id', 'email').orderBy([{ column: 'created_at' }, { column: 'id' }]);
  const emails = new Set(users.map((user) => user.email));
  const skeletons = new Set<string>();
  for (const user of users) {
    const normalized = normalizeEmail(user.email);
    const email = normalized !== user.email && !emails.has(normalized) ? normalized : user.email;
    emails.add(email);
    const skeleton = emailSkeleton(email);
    const holds = !skeletons.has(skeleton);
    skeletons.add(skeleton);
    const stored = holds ? skeleton : null;
    if (email !== user.email || stored !== user.email) await knex('users').where({ id: user.id }).update({ email, email_skeleton: stored });
  }
  await knex.schema.alterTable('users', (table) => {
    table.unique(['email_skeleton']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (table) => {
    table.dropUnique(['email_skeleton']);
    table.dropColumn('email_skeleton');
  });
}
