import { AccountError, type Accounts } from '../accounts/accounts.js';
import type { StoredConnection } from '../store/connections.js';
import { DuplicateIdentityError, type FederatedIdentityStore } from '../store/federated-identities.js';
import type { Transactions } from '../store/transactions.js';
import type { User } from '../store/users.js';
import type { Attempt, Failure, FederationEvents } from './events.js';
import { decide, type UpstreamProfile } from './linking.js';

/**
 * Carries out what the linking policy (linking.ts) decides for a validated upstream profile: signs the linked user
 * in (their email following a verified upstream change), links an existing account, or creates one together with
 * its identity in one transaction.
 */
export function createProvisioning(deps: {
  identities: FederatedIdentityStore; accounts: Accounts; transactions: Transactions; now: () => number; refuse: FederationEvents['refuse']; record: FederationEvents['record'];
}) {
  const { identities, accounts, transactions, now, refuse, record } = deps;
  return {
    /** Signs in, links or creates the local user the policy picks; a refusal is returned. */
    async localUser(connection: StoredConnection, profile: UpstreamProfile, attempt: Attempt): Promise<User | Failure> {
      const identity = await identities.find(connection.id, profile.subject);
      const linked = identity ? (await accounts.findById(identity.userId)) ?? null : undefined;
      const emailOwner = identity || profile.email === null ? undefined : await accounts.findByEmail(profile.email);
      const decision = decide({ connection, profile, linked, emailOwner });
      const who = { accountId: null as string | null, email: profile.email, details: { connection: connection.id, subject: profile.subject } };
      const at = now();
      switch (decision.kind) {
        case 'refuse':
          return refuse(attempt, { failure: decision.reason, connection, email: profile.email }, { subject: profile.subject, accountId: linked?.id ?? emailOwner?.id });
        case 'sign_in': {
          await identities.touch(connection.id, profile.subject, at);
          // The local email follows the upstream's, but only to an email the upstream says is verified.
          if (profile.email !== null && profile.emailVerified && profile.email !== decision.user.email) {
            try {
              return await accounts.changeEmail(decision.user.id, profile.email, true);
            } catch (error) {
              if (!(error instanceof AccountError)) throw error;
              record(attempt, { ...who, type: 'federation.email_not_updated', accountId: decision.user.id, details: { ...who.details, reason: error.message } });
            }
          }
          return decision.user;
        }
        case 'link':
          try {
            await identities.insert({ connectionId: connection.id, subject: profile.subject, userId: decision.user.id, createdAt: at, lastUsedAt: at });
          } catch (error) {
            if (!(error instanceof DuplicateIdentityError)) throw error;
            return refuse(attempt, { failure: 'email_taken', connection, email: profile.email }, { subject: profile.subject });
          }
          record(attempt, { ...who, type: 'federation.linked', accountId: decision.user.id });
          return decision.user;
        case 'create':
          try {
            // The user and its identity, both or neither: a sign-in that fails half-way (a concurrent one for the
            // same person, an email taken meanwhile) leaves no account behind.
            const user = await transactions.run(async (trx) => {
              const created = await accounts.create({
                email: profile.email!, emailVerified: profile.emailVerified,
                givenName: profile.givenName ?? undefined, familyName: profile.familyName ?? undefined,
              }, trx);
              await identities.insert({ connectionId: connection.id, subject: profile.subject, userId: created.id, createdAt: at, lastUsedAt: at }, trx);
              return created;
            });
            record(attempt, { ...who, type: 'federation.user_created', accountId: user.id });
            return user;
          } catch (error) {
            if (!(error instanceof AccountError) && !(error instanceof DuplicateIdentityError)) throw error;
            return refuse(attempt, { failure: 'email_taken', connection, email: profile.email }, { subject: profile.subject, error: error.message });
          }
      }
    },
  };
}
