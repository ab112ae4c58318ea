import type { Accounts } from '../accounts/accounts.js';
import type { Audit } from '../audit.js';
import type { MailSettings } from '../config.js';
import type { Mail } from '../mail/outbox.js';
import type { Transactions } from '../store/transactions.js';
import type { BackgroundWork } from './background.js';
import type { AccountLinks } from './links.js';
import { addressKey, ipKey, type RequestLimits } from './request-limits.js';

export type PasswordReset = ReturnType<typeof createPasswordReset>;

/** The outcome of setting a password through a mailed link. */
/** `signInTicket`: an accepted invitation's sign-in ticket, for the browser that accepted it (sign-in-ticket.ts). */
export type LinkOutcome = { isDone: true; accountId: string; email: string; signInTicket?: string } | { isDone: false };

/**
 * "Forgot your password?": a request queues a reset link for an active account and nothing for any other address,
 * answering the same either way (the work after the throttle happens in the background, so it takes the same
 * time too). The link sets a new password once (ending every session and token, as `users set-password` does)
 * and the person is mailed that it changed.
 */
export function createPasswordReset(deps: {
  accounts: Accounts; links: AccountLinks; mail: Mail; transactions: Transactions; audit: Audit; limits: RequestLimits;
  background: BackgroundWork; settings: Pick<MailSettings, 'passwordResetTtlSeconds' | 'resetsPerAddressPerHour' | 'resetsPerIpPerHour'>;
}) {
  const { accounts, links, mail, transactions, audit, limits, background, settings } = deps;

  async function sendLink(email: string, ip: string): Promise<void> {
    const user = await accounts.findByEmail(email);
    // Unknown and disabled addresses get no mail (a disabled account must not be revived by its mailbox).
    if (!user?.isActive) {
      void audit.record({ type: 'password_reset.ignored', email, ip });
      return;
    }
    await transactions.run(async (trx) => {
      const token = await links.issue('password-reset', user, settings.passwordResetTtlSeconds, trx);
      await mail.enqueue({
        to: user.email, subject: 'mail.password_reset.subject', template: 'password-reset',
        locals: { link: `/password/reset?token=${token}`, ttlMinutes: Math.round(settings.passwordResetTtlSeconds / 60), givenName: user.givenName },
      }, trx);
    });
    void audit.record({ type: 'password_reset.requested', accountId: user.id, email: user.email, ip });
  }

  return {
    /**
     * Asks for a link for `email` from `ip`; returns the seconds to wait when a limit refuses it, else undefined
     * (and the link, if the account exists, is queued in the background).
     */
    async request(email: string, ip: string): Promise<number | undefined> {
      const retryAfterSeconds = await limits.reserve('password-reset', [
        { key: ipKey(ip), perHour: settings.resetsPerIpPerHour },
        { key: addressKey(email), perHour: settings.resetsPerAddressPerHour },
      ]);
      if (retryAfterSeconds !== undefined) {
        void audit.record({ type: 'password_reset.throttled', ip, details: { retryAfterSeconds } });
        return retryAfterSeconds;
      }
      background.run('password reset request', () => sendLink(email, ip));
      return undefined;
    },

    /** Whether the link can still set a password (the page asks for one only then). */
    async isValid(token: unknown): Promise<boolean> {
      return (await links.find(token, 'password-reset')) !== undefined;
    },

    /**
     * Sets the password if the link is still valid, using it up in the same transaction (two submissions of one
     * link: one sets the password, the other is told the link was used). The policy is checked before the link is
     * used, so a refused password leaves it valid (AccountError). The reset proves the address, so it is verified.
     */
    async complete(token: string, password: string, ip: string): Promise<LinkOutcome> {
      const link = await links.find(token, 'password-reset');
      const user = link && await accounts.findActive(link.userId);
      if (!link || !user) return { isDone: false };
      const changed = await accounts.changePassword(user, password, async (trx) => {
        if (!(await links.consume(token, 'password-reset', trx))) return false;
        await mail.enqueue({ to: user.email, subject: 'mail.password_changed.subject', template: 'password-changed', locals: { email: user.email } }, trx);
        return true;
      }, link.email === user.email ? { emailVerified: true } : {});
      if (!changed) return { isDone: false };
      void audit.record({ type: 'user.password_changed', accountId: user.id, email: user.email, ip, details: { via: 'password-reset', sessionsEnded: changed.logout.sessionsEnded } });
      return { isDone: true, accountId: user.id, email: user.email };
    },
  };
}
