import type { Message } from '../i18n/catalogues.js';
import type { Accounts } from '../accounts/accounts.js';
import type { LoginThrottle } from '../accounts/login-throttle.js';
import { HashingBusyError } from '../accounts/passwords.js';
import type { Sessions } from '../accounts/sessions.js';
import type { Audit } from '../audit.js';
import type { Mail } from '../mail/outbox.js';
import type { User } from '../store/users.js';
import type { Transactions } from '../store/transactions.js';

/** A password check that failed: what to tell the person, with the status to answer. */
export type PasswordRefusal = { message: string | Message; status: 400 | 429 | 503; retryAfterSeconds?: number };

export type PasswordChange = ReturnType<typeof createPasswordChange>;

/**
 * The account page's password rules. Re-entering a password there is a sign-in attempt like any other: it takes its
 * place in the login throttle first (see login-throttle.ts), so a stolen session cookie is no faster way to guess the
 * password than the login form, and a failure is a `sign_in.failure` in the audit trail.
 */
export function createPasswordChange(deps: {
  accounts: Accounts; sessions: Sessions; throttle: LoginThrottle; audit: Audit; mail: Mail; transactions: Transactions;
}) {
  const { accounts, throttle, audit } = deps;

  /** Undefined when `password` is the user's password; otherwise why not. */
  async function verify(user: User, password: string, ip: string): Promise<PasswordRefusal | undefined> {
    const who = { accountId: user.id, email: user.email, ip, details: { during: 'account' } };
    const reserved = await throttle.reserve(user.email, ip);
    if ('lock' in reserved) {
      void audit.record({ ...who, type: 'sign_in.throttled', details: { during: 'account', scope: reserved.lock.scope } });
      return { message: 'account.password.too_many', status: 429, retryAfterSeconds: reserved.lock.retryAfterSeconds };
    }
    let matched: User | undefined;
    try {
      matched = await accounts.authenticate(user.email, password);
    } catch (error) {
      await reserved.attempt.abandoned().catch(() => undefined);
      if (!(error instanceof HashingBusyError)) throw error;
      return { message: 'login.busy', status: 503, retryAfterSeconds: 5 };
    }
    if (matched?.id !== user.id) {
      const lock = await reserved.attempt.failed();
      void audit.record({ ...who, type: 'sign_in.failure' });
      if (lock) return { message: 'account.password.too_many', status: 429, retryAfterSeconds: lock.retryAfterSeconds };
      return { message: 'account.password.wrong', status: 400 };
    }
    await reserved.attempt.succeeded();
    return undefined;
  }

  return {
    verify,

    /**
     * Changes the password when `current` is right, mails the person (in the same transaction: the mail exists
     * exactly when the change does) and ends every other session with its grants and tokens; the session that made
     * the change stays signed in. Throws AccountError when the new password breaks the policy.
     */
    async change(
      user: User, session: { uid: string; renew(): Promise<number> }, passwords: { current: string; next: string }, ip: string,
    ): Promise<PasswordRefusal | undefined> {
      const refused = await verify(user, passwords.current, ip);
      if (refused) return refused;
      await accounts.checkPassword(passwords.next);
      // This session signs in anew, and every session signed in before that moment is refused from now on, also one
      // that a request in flight saves again after endOthers has deleted it.
      const renewedAt = await session.renew();
      await deps.transactions.run(async (trx) => {
        await accounts.setOwnPassword(user.id, passwords.next, renewedAt, trx);
        await deps.mail.enqueue({ to: user.email, subject: 'mail.password_changed.subject', template: 'account-password-changed', locals: { email: user.email } }, trx);
      });
      const { sessionsEnded } = await deps.sessions.endOthers(user.id, session.uid);
      void audit.record({ type: 'user.password_changed', accountId: user.id, email: user.email, ip, details: { actor: 'account page', sessionsEnded } });
      return undefined;
    },
  };
}
