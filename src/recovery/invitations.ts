import type { Accounts } from '../accounts/accounts.js';
import type { Audit } from '../audit.js';
import type { MailSettings } from '../config.js';
import type { Mail } from '../mail/outbox.js';
import type { Transaction, Transactions } from '../store/transactions.js';
import type { User } from '../store/users.js';
import { UserFacingError } from '../user-facing-error.js';
import type { AccountLinks } from './links.js';
import type { LinkOutcome } from './password-reset.js';

export type Invitations = ReturnType<typeof createInvitations>;

/** An invitation the CLI cannot send; its message is for the operator, in English, and never reaches a page. */
export class InvitationError extends UserFacingError {
  constructor(message: string) {
    super(message);
    this.name = 'InvitationError';
  }
}

export type Invitation = { email: string; givenName?: string; familyName?: string; isAdmin?: boolean; actor: string };

/**
 * `latchkey users invite`: the account is created without a password and the person is mailed a single-use link
 * (INVITE_TTL) to choose one. Inviting an address whose account still has no password sends a new link, which
 * replaces the previous one.
 */
export function createInvitations(deps: {
  accounts: Accounts; links: AccountLinks; mail: Mail; transactions: Transactions; audit: Audit;
  settings: Pick<MailSettings, 'inviteTtlSeconds' | 'inviteSignInTtlSeconds' | 'smtpUrl'>; isProduction: boolean;
}) {
  const { accounts, links, mail, transactions, audit, settings } = deps;

  async function sendLink(user: User, trx: Transaction): Promise<void> {
    const token = await links.issue('invitation', user, settings.inviteTtlSeconds, trx);
    await mail.enqueue({
      to: user.email, subject: 'mail.invitation.subject', template: 'invitation',
      locals: { link: `/invitation?token=${token}`, ttlDays: Math.round(settings.inviteTtlSeconds / 86400 * 10) / 10, givenName: user.givenName },
    }, trx);
  }

  return {
    async invite(input: Invitation): Promise<{ user: User; isResent: boolean }> {
      if (deps.isProduction && !settings.smtpUrl) throw new InvitationError('invitations are mailed: set SMTP_URL (and EMAIL_FROM) first');
      const existing = await accounts.findByEmail(input.email);
      if (existing && existing.passwordHash !== null) {
        throw new InvitationError(`${existing.email} already has an account with a password; they can use "Forgot your password?"`);
      }
      const user = existing ?? undefined;
      const invited = await transactions.run(async (trx) => {
        const account = user ?? await accounts.create({
          email: input.email, givenName: input.givenName, familyName: input.familyName, isAdmin: input.isAdmin,
        }, trx);
        await sendLink(account, trx);
        return account;
      });
      void audit.record({ type: user ? 'user.invitation_resent' : 'user.invited', accountId: invited.id, email: invited.email, details: { actor: input.actor, isAdmin: invited.isAdmin } });
      return { user: invited, isResent: user !== undefined };
    },

    async isValid(token: unknown): Promise<boolean> {
      return (await links.find(token, 'invitation')) !== undefined;
    },

    /**
     * Sets the first password through the link (used up in the same transaction); the link proved the address. The
     * same transaction issues the sign-in ticket (INVITE_SIGN_IN_TTL) that signs this browser in (sign-in-ticket.ts).
     */
    async accept(token: string, password: string, ip: string): Promise<LinkOutcome> {
      const link = await links.find(token, 'invitation');
      const user = link && await accounts.findActive(link.userId);
      if (!link || !user || link.email !== user.email) return { isDone: false };
      let signInTicket: string | undefined;
      const changed = await accounts.changePassword(user, password, async (trx) => {
        if (!(await links.consume(token, 'invitation', trx))) return false;
        signInTicket = await links.issue('sign-in', user, settings.inviteSignInTtlSeconds, trx);
        return true;
      }, { emailVerified: true });
      if (!changed) return { isDone: false };
      void audit.record({ type: 'user.invitation_accepted', accountId: user.id, email: user.email, ip });
      return { isDone: true, accountId: user.id, email: user.email, signInTicket };
    },

    /**
     * Uses up an accepted invitation's sign-in ticket (atomically: of two requests with it, one wins) and returns its
     * account while that is active and still has the address the invitation was for.
     */
    async redeemSignIn(ticket: string, ip: string): Promise<User | undefined> {
      const link = await links.consume(ticket, 'sign-in');
      const user = link && await accounts.findActive(link.userId);
      if (!link || !user || link.email !== user.email) return undefined;
      void audit.record({ type: 'sign_in.success', accountId: user.id, email: user.email, ip, details: { via: 'invitation' } });
      return user;
    },
  };
}
