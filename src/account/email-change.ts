import { createHash, randomBytes } from 'node:crypto';
import type { Accounts } from '../accounts/accounts.js';
import type { Audit } from '../audit.js';
import type { MailSettings } from '../config.js';
import type { Mail } from '../mail/outbox.js';
import { addressKey, ipKey, type RequestLimits } from '../recovery/request-limits.js';
import type { AccountTokenStore } from '../store/account-tokens.js';
import type { Transactions } from '../store/transactions.js';
import type { User } from '../store/users.js';

/** The link's token is 256 random bits; the table keeps only its SHA-256, so a copy of the table opens nothing. */
const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

export const confirmPath = '/account/email/confirm';

export type EmailChange = ReturnType<typeof createEmailChange>;

/** What a request for a new address came to: the link is on its way (as far as the person may know), or wait. */
export type EmailChangeRequest = { isSent: true } | { isSent: false; retryAfterSeconds: number };

/**
 * A new email replaces the old one only once a link mailed to the new address is followed: the single-use link
 * (account_tokens, purpose `email-change`, lifetime EMAIL_VERIFICATION_TTL) proves the person reads that mailbox.
 * A new request replaces an unused link. When the change is made, the old address is told.
 *
 * Whether the new address belongs to another account (or looks like one's) never changes the answer, as on the
 * sign-up page: that account's owner is mailed "someone tried to use your address" instead. Requests are limited
 * like the other forms that send mail (PASSWORD_RESET_MAX_PER_ADDRESS_PER_HOUR for the new address, known or not,
 * and PASSWORD_RESET_MAX_PER_IP_PER_HOUR), so the form can flood no one's inbox, and the few answers an address can
 * get in an hour are too few to tell the two paths apart by their timing.
 */
export function createEmailChange(deps: {
  accounts: Accounts; accountTokens: AccountTokenStore; mail: Mail; transactions: Transactions; audit: Audit; limits: RequestLimits;
  settings: Pick<MailSettings, 'resetsPerAddressPerHour' | 'resetsPerIpPerHour'>; issuer: () => string; ttlSeconds: number; now: () => number;
}) {
  const { accounts, accountTokens, mail, now, settings } = deps;
  return {
    /** Mails the confirmation link to the new address; throws AccountError when the address itself is unusable. */
    async request(user: User, requested: string, ip: string): Promise<EmailChangeRequest> {
      const { email, owner } = await accounts.checkNewEmail(user, requested);
      const retryAfterSeconds = await deps.limits.reserve('email-change', [
        { key: ipKey(ip), perHour: settings.resetsPerIpPerHour }, { key: addressKey(email), perHour: settings.resetsPerAddressPerHour },
      ]);
      if (retryAfterSeconds !== undefined) return { isSent: false, retryAfterSeconds };
      if (owner) {
        await mail.enqueue({ to: owner.email, subject: 'mail.email_change_existing.subject', template: 'email-change-existing', locals: {} });
        void deps.audit.record({ type: 'email.change_refused', accountId: user.id, email: user.email, ip, details: { newEmail: email, ownerId: owner.id } });
        return { isSent: true };
      }
      const token = randomBytes(32).toString('base64url');
      const link = `${deps.issuer()}${confirmPath}?${new URLSearchParams({ token })}`;
      await deps.transactions.run(async (trx) => {
        await accountTokens.replace(tokenHash(token), { purpose: 'email-change', userId: user.id, email, expiresAt: now() + deps.ttlSeconds * 1000, createdAt: now() }, trx);
        await mail.enqueue({ to: email, subject: 'mail.email_change.subject', template: 'email-change', locals: { link, email, oldEmail: user.email } }, trx);
      });
      void deps.audit.record({ type: 'email.change_requested', accountId: user.id, email: user.email, ip, details: { newEmail: email } });
      return { isSent: true };
    },

    /** The change a valid, unused link would make, without using it up (the page that asks to confirm). */
    async pending(token: string): Promise<{ oldEmail: string; newEmail: string } | undefined> {
      const found = await accountTokens.findValid(tokenHash(token), 'email-change', now());
      const user = found && await accounts.findActive(found.userId);
      return user && { oldEmail: user.email, newEmail: found.email };
    },

    /**
     * Uses the link up and changes the email, and queues the notice to the old address, in one transaction: of two
     * requests with one link only one changes anything. Undefined when the link is unknown, used or expired.
     */
    async confirm(token: string, ip: string): Promise<{ oldEmail: string; newEmail: string } | undefined> {
      const changed = await deps.transactions.run(async (trx) => {
        const used = await accountTokens.consume(tokenHash(token), 'email-change', now(), trx);
        const user = used && await accounts.findActive(used.userId);
        if (!used || !user) return undefined;
        await accounts.changeEmail(user.id, used.email, true, trx);
        await mail.enqueue({
          to: user.email, subject: 'mail.email_changed.subject', template: 'email-changed', locals: { oldEmail: user.email, newEmail: used.email },
        }, trx);
        return { accountId: user.id, oldEmail: user.email, newEmail: used.email };
      });
      if (!changed) return undefined;
      void deps.audit.record({ type: 'user.email_changed', accountId: changed.accountId, email: changed.newEmail, ip, details: { oldEmail: changed.oldEmail } });
      return { oldEmail: changed.oldEmail, newEmail: changed.newEmail };
    },
  };
}
