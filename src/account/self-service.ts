import type { Accounts } from '../accounts/accounts.js';
import type { Sessions } from '../accounts/sessions.js';
import type { Audit } from '../audit.js';
import type { AccountOverview } from './overview.js';
import type { SignedIn } from './signed-in.js';

export type SelfService = ReturnType<typeof createSelfService>;

/**
 * What a signed-in person may change about their own account besides password and email. Every action is of
 * `person.user` only: a session uid or client id of someone else's finds nothing of this account, and is refused.
 */
export function createSelfService(deps: { accounts: Accounts; sessions: Sessions; overview: AccountOverview; audit: Audit }) {
  const { sessions, audit } = deps;
  const who = (person: SignedIn, ip: string) => ({ accountId: person.user.id, email: person.user.email, ip });
  return {
    updateNames(person: SignedIn, names: { givenName: string; familyName: string }): Promise<void> {
      return deps.accounts.updateNames(person.user.id, names);
    },

    /** Ends one of the person's sessions (this one too, if asked); false when it is not theirs or has ended. */
    async endSession(person: SignedIn, uid: string, ip: string): Promise<boolean> {
      const ended = await sessions.endOne(person.user.id, uid);
      if (!ended) return false;
      void audit.record({ type: 'session.ended', ...who(person, ip), details: { actor: 'account page', sessionsEnded: ended.sessionsEnded } });
      return true;
    },

    async endOtherSessions(person: SignedIn, ip: string): Promise<void> {
      const { sessionsEnded } = await sessions.endOthers(person.user.id, person.sessionUid);
      void audit.record({ type: 'session.ended', ...who(person, ip), details: { actor: 'account page', sessionsEnded, allOthers: true } });
    },

    /** Revokes the app's grants and tokens; false when the person has not given that app anything. */
    async revokeApp(person: SignedIn, clientId: string, ip: string): Promise<boolean> {
      if (!(await deps.overview.hasApp(person.user.id, clientId))) return false;
      await sessions.revokeClient(person.user.id, clientId);
      void audit.record({ type: 'app.revoked', ...who(person, ip), clientId });
      return true;
    },
  };
}
