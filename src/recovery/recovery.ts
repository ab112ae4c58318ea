import type { Logger } from 'pino';
import type { Accounts } from '../accounts/accounts.js';
import type { PasswordHasher } from '../accounts/passwords.js';
import type { Audit } from '../audit.js';
import type { Config } from '../config.js';
import type { Mail } from '../mail/outbox.js';
import type { AccountTokenStore } from '../store/account-tokens.js';
import type { Transactions } from '../store/transactions.js';
import type { UserStore } from '../store/users.js';
import { createBackgroundWork } from './background.js';
import { createInvitations } from './invitations.js';
import { createAccountLinks } from './links.js';
import { createPasswordReset } from './password-reset.js';
import type { RequestLimits } from './request-limits.js';
import { createSignUp } from './sign-up.js';
import { createVerification } from './verification.js';

export type Recovery = ReturnType<typeof createRecovery>;

/**
 * The flows that go through a person's mailbox: password reset (unless PASSWORD_RESET=false), invitations, email
 * verification and sign-up (REGISTRATION=open). `settled()` waits for the work requests left in the background.
 */
export function createRecovery(deps: {
  config: Config; accounts: Accounts; users: UserStore; hasher: PasswordHasher; tokens: AccountTokenStore; limits: RequestLimits;
  mail: Mail; transactions: Transactions; audit: Audit; logger: Logger; now: () => number;
}) {
  const { config, accounts, mail, transactions, audit, now } = deps;
  const settings = config.mail;
  const links = createAccountLinks({ tokens: deps.tokens, now });
  const { limits } = deps;
  const background = createBackgroundWork(deps.logger);
  const verification = createVerification({ accounts, users: deps.users, links, mail, transactions, audit, limits, now, settings });
  return {
    passwordReset: settings.isPasswordResetEnabled ? createPasswordReset({ accounts, links, mail, transactions, audit, limits, background, settings }) : undefined,
    invitations: createInvitations({ accounts, links, mail, transactions, audit, settings, isProduction: config.isProduction }),
    verification,
    signUp: settings.registration === 'open'
      ? createSignUp({ accounts, users: deps.users, hasher: deps.hasher, verification, mail, transactions, audit, limits, background, settings })
      : undefined,
    settled: () => background.settled(),
  };
}
