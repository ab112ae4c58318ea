import { AccountError, type Accounts } from '../accounts/accounts.js';
import { emailProblem, emailSkeleton, normalizeEmail } from '../accounts/email.js';
import type { Message } from '../i18n/catalogues.js';
import type { PasswordHasher } from '../accounts/passwords.js';
import type { Audit } from '../audit.js';
import type { MailSettings } from '../config.js';
import type { Mail } from '../mail/outbox.js';
import type { Transactions } from '../store/transactions.js';
import type { UserStore } from '../store/users.js';
import type { BackgroundWork } from './background.js';
import { addressKey, ipKey, type RequestLimits } from './request-limits.js';
import type { Verification } from './verification.js';

export type SignUp = ReturnType<typeof createSignUp>;

export type Registration = { email: string; password: string; givenName: string; familyName: string };

/** Names are shown on pages and in mails: one line, printable, and as long as the column. */
const maxNameLength = 200;
const unprintable = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/**
 * The sign-up page (REGISTRATION=open): an account is created unverified and a verification link is mailed. What a
 * person typed is checked first (the answer may depend on that); whether the address already has an account never
 * changes the answer: its owner is mailed "someone tried to create an account with your address" instead, in the
 * background, where the password is hashed either way.
 */
export function createSignUp(deps: {
  accounts: Accounts; users: UserStore; hasher: PasswordHasher; verification: Verification; mail: Mail; transactions: Transactions;
  audit: Audit; limits: RequestLimits; background: BackgroundWork;
  settings: Pick<MailSettings, 'registrationEmailDomains' | 'resetsPerAddressPerHour' | 'resetsPerIpPerHour'>;
}) {
  const { accounts, users, hasher, verification, mail, transactions, audit, limits, background, settings } = deps;

  async function register(input: Registration, ip: string): Promise<void> {
    const email = normalizeEmail(input.email);
    const owner = await users.findByEmail(email) ?? await users.findBySkeleton(emailSkeleton(email));
    if (owner) {
      // The same work as a new account: the hash is made and thrown away.
      await hasher.hash(input.password);
      // One warning per address and hour at most: the form must not become a way to flood someone's inbox.
      if (await limits.reserve('sign-up-existing', [{ key: addressKey(owner.email), perHour: settings.resetsPerAddressPerHour }]) !== undefined) return;
      await mail.enqueue({ to: owner.email, subject: 'mail.sign_up_existing.subject', template: 'sign-up-existing', locals: {} });
      void audit.record({ type: 'sign_up.existing_address', accountId: owner.id, email: owner.email, ip });
      return;
    }
    try {
      const user = await transactions.run(async (trx) => {
        const created = await accounts.create({
          email, password: input.password, givenName: input.givenName, familyName: input.familyName, isSelfRegistered: true,
        }, trx);
        await verification.sendLink(created, trx);
        return created;
      });
      void audit.record({ type: 'user.signed_up', accountId: user.id, email: user.email, ip });
    } catch (error) {
      // Someone signed up with this address (or a look-alike) in the meantime: they are the owner now.
      if (!(error instanceof AccountError)) throw error;
      void audit.record({ type: 'sign_up.refused', email, ip, details: { reason: error.message } });
    }
  }

  return {
    /**
     * What is wrong with the form, as a message for the person (the email's and the password's reasons come from the
     * account rules, which the CLI shares), or undefined.
     */
    async problem(input: Registration): Promise<Message | undefined> {
      const email = normalizeEmail(input.email);
      const problem = emailProblem(email);
      if (problem) return { key: 'recovery.sign_up.bad_email', params: { problem } };
      const domain = email.slice(email.lastIndexOf('@') + 1);
      if (settings.registrationEmailDomains.length > 0 && !settings.registrationEmailDomains.includes(domain)) {
        return { key: 'recovery.sign_up.domains', params: { domains: settings.registrationEmailDomains.join(', ') } };
      }
      for (const [name, missing, unfit] of [
        [input.givenName, 'recovery.sign_up.no_given_name', 'recovery.sign_up.long_given_name'],
        [input.familyName, 'recovery.sign_up.no_family_name', 'recovery.sign_up.long_family_name'],
      ]) {
        if (!name.trim()) return { key: missing };
        if (name.length > maxNameLength || unprintable.test(name)) return { key: unfit, params: { count: maxNameLength } };
      }
      return accounts.passwordProblem(input.password);
    },

    /**
     * Reserves the per-IP limit, then creates the account (or warns the address's owner) in the background;
     * returns the seconds to wait when the limit refuses.
     */
    async request(input: Registration, ip: string): Promise<number | undefined> {
      const retryAfterSeconds = await limits.reserve('sign-up', [{ key: ipKey(ip), perHour: settings.resetsPerIpPerHour }]);
      if (retryAfterSeconds !== undefined) return retryAfterSeconds;
      background.run('sign-up', () => register({ ...input, givenName: input.givenName.trim(), familyName: input.familyName.trim() }, ip));
      return undefined;
    },
  };
}
