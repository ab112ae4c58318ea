import type { Accounts } from '../accounts/accounts.js';
import type { Audit } from '../audit.js';
import type { MailSettings } from '../config.js';
import type { Mail } from '../mail/outbox.js';
import type { Transaction, Transactions } from '../store/transactions.js';
import type { User, UserStore } from '../store/users.js';
import type { AccountLinks } from './links.js';
import { type RequestLimits } from './request-limits.js';

export type Verification = ReturnType<typeof createVerification>;

/**
 * Email verification: `email_verified` becomes true only through a link mailed to the address (or an operator's
 * --email-verified). A self-registered account is held at sign-in until then (REQUIRE_VERIFIED_EMAIL).
 */
export function createVerification(deps: {
  accounts: Accounts; users: UserStore; links: AccountLinks; mail: Mail; transactions: Transactions; audit: Audit; limits: RequestLimits; now: () => number;
  settings: Pick<MailSettings, 'emailVerificationTtlSeconds' | 'requireVerifiedEmail' | 'resetsPerAddressPerHour'>;
}) {
  const { accounts, users, links, mail, transactions, audit, limits, settings, now } = deps;

  async function sendLink(user: User, trx: Transaction): Promise<void> {
    const token = await links.issue('email-verification', user, settings.emailVerificationTtlSeconds, trx);
    await mail.enqueue({
      to: user.email, subject: 'mail.verify_email.subject', template: 'verify-email',
      locals: { link: `/email/verify?token=${token}`, ttlHours: Math.round(settings.emailVerificationTtlSeconds / 3600), givenName: user.givenName },
    }, trx);
  }

  return {
    sendLink,

    /** Whether this person may not be signed in to an app yet: a self-registered account with an unverified address. */
    isHeld(user: User): boolean {
      return settings.requireVerifiedEmail && user.isSelfRegistered && !user.emailVerified;
    },

    /** A new link for a held account (the "send it again" button), within the per-address hourly limit. */
    async resend(userId: string): Promise<void> {
      const user = await accounts.findActive(userId);
      if (!user || user.emailVerified) return;
      if (await limits.reserve('verification-resend', [{ key: `account:${user.id}`, perHour: settings.resetsPerAddressPerHour }]) !== undefined) return;
      await transactions.run((trx) => sendLink(user, trx));
      void audit.record({ type: 'email_verification.resent', accountId: user.id, email: user.email });
    },

    async isValid(token: unknown): Promise<boolean> {
      return (await links.find(token, 'email-verification')) !== undefined;
    },

    /** Uses the link and verifies the address it was sent to, if that is still the account's address. */
    async confirm(token: string): Promise<boolean> {
      const link = await links.find(token, 'email-verification');
      const user = link && await accounts.findActive(link.userId);
      if (!link || !user || link.email !== user.email) return false;
      const isVerified = await transactions.run(async (trx) => {
        if (!(await links.consume(token, 'email-verification', trx))) return false;
        await users.update(user.id, { emailVerified: true, updatedAt: now() }, trx);
        return true;
      });
      if (isVerified) void audit.record({ type: 'user.email_verified', accountId: user.id, email: user.email });
      return isVerified;
    },
  };
}
