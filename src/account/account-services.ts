import type { Accounts } from '../accounts/accounts.js';
import type { LoginThrottle } from '../accounts/login-throttle.js';
import type { Sessions } from '../accounts/sessions.js';
import type { Audit } from '../audit.js';
import type { Config } from '../config.js';
import type { Mail } from '../mail/outbox.js';
import type { Clients } from '../registry/clients.js';
import type { AccountTokenStore } from '../store/account-tokens.js';
import type { AuditEventStore } from '../store/audit-events.js';
import type { OidcPayloadStore } from '../store/oidc-payloads.js';
import type { Transactions } from '../store/transactions.js';
import type { RequestLimits } from '../recovery/request-limits.js';
import { createEmailChange } from './email-change.js';
import { createAccountOverview } from './overview.js';
import { createPasswordChange } from './password-change.js';
import { createSelfService } from './self-service.js';
import { createSessionActivityLog } from './session-activity.js';

/** How many security events the account page lists. */
const shownEventCount = 20;

export type AccountServices = ReturnType<typeof createAccountServices>;

/** The account page's services, built by the composition root; its routes are mounted by oidc/app.ts. */
export function createAccountServices(deps: {
  config: Pick<Config, 'sessionTtlSeconds' | 'reauthAfterSeconds' | 'mail'>;
  accounts: Accounts; sessions: Sessions; throttle: LoginThrottle; audit: Audit; mail: Mail; transactions: Transactions;
  payloads: OidcPayloadStore; clients: Pick<Clients, 'find'>; auditEvents: AuditEventStore; accountTokens: AccountTokenStore; limits: RequestLimits;
  issuer: () => string; now: () => number;
}) {
  const { config, accounts, sessions, audit, now } = deps;
  const activity = createSessionActivityLog({ payloads: deps.payloads, sessionTtlSeconds: config.sessionTtlSeconds, now });
  const overview = createAccountOverview({
    sessions, activity, payloads: deps.payloads, clients: deps.clients, auditEvents: deps.auditEvents, now, eventCount: shownEventCount,
  });
  return {
    activity,
    overview,
    selfService: createSelfService({ accounts, sessions, overview, audit }),
    passwordChange: createPasswordChange({ accounts, sessions, throttle: deps.throttle, audit, mail: deps.mail, transactions: deps.transactions }),
    emailChange: createEmailChange({
      accounts, accountTokens: deps.accountTokens, mail: deps.mail, transactions: deps.transactions, audit, limits: deps.limits, settings: config.mail,
      issuer: deps.issuer, ttlSeconds: config.mail.emailVerificationTtlSeconds, now,
    }),
    reauthAfterSeconds: config.reauthAfterSeconds,
  };
}
