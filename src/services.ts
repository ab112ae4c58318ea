import path from 'node:path';
import type { DestinationStream, Logger } from 'pino';
import { createAccountServices } from './account/account-services.js';
import { createAccounts, type Accounts } from './accounts/accounts.js';
import { createPasswordPolicy } from './accounts/password-policy.js';
import { createPasswordHasher } from './accounts/passwords.js';
import { createLoginThrottle } from './accounts/login-throttle.js';
import { createSessions, type Sessions } from './accounts/sessions.js';
import { createAudit, type Audit } from './audit.js';
import type { Config } from './config.js';
import { migrateDatabase, openDatabase } from './database.js';
import { createLogger } from './logger.js';
import { createPasskeys, type Passkeys } from './mfa/passkeys.js';
import { relyingPartyOf } from './mfa/relying-party.js';
import { createSecondFactors, type SecondFactors } from './mfa/second-factors.js';
import { createMail, type Mail } from './mail/outbox.js';
import { createMailSender, type MailSender } from './mail/sender.js';
import { createMailTemplates } from './mail/templates.js';
import { createLanguages } from './i18n/languages.js';
import { createLogTransport, createSmtpTransport } from './mail/transport.js';
import { createMaintenance, type Maintenance } from './maintenance.js';
import { createRecovery, type Recovery } from './recovery/recovery.js';
import { createRequestLimits } from './recovery/request-limits.js';
import { createBackChannel } from './oidc/back-channel-logout.js';
import { createProviderHost, type ProviderHost } from './oidc/provider-host.js';
import { createConnections, type Connections } from './federation/connections.js';
import { createConnectionSecretBox } from './federation/secret-box.js';
import { createUpstreams } from './federation/upstream.js';
import { createApis, type Apis } from './registry/apis.js';
import { createClients, type Clients } from './registry/clients.js';
import { createRegistrationTokens, type RegistrationTokens } from './registration/registration-tokens.js';
import { createApiStore } from './store/apis.js';
import { createAuditEventStore, type AuditEventStore } from './store/audit-events.js';
import { createClientStore } from './store/clients.js';
import { createAccountTokenStore } from './store/account-tokens.js';
import { createConnectionStore } from './store/connections.js';
import { createFederatedIdentityStore } from './store/federated-identities.js';
import { createCounterStore } from './store/counters.js';
import { createOutboxStore } from './store/mail-outbox.js';
import { createTransactions, type Transactions } from './store/transactions.js';
import { createOidcPayloadStore } from './store/oidc-payloads.js';
import { createRegistrationTokenStore } from './store/registration-tokens.js';
import { createUserStore } from './store/users.js';
import { createSecondFactorStore } from './store/second-factors.js';
import { createPasskeyStore } from './store/passkeys.js';
import { createSecretBox } from './secret-box.js';
import { signingKeyRetentionMs } from './signing-keys.js';
import { planThreadPool, type ThreadPoolPlan } from './thread-pool.js';

export type Services = {
  logger: Logger;
  audit: Audit;
  auditEvents: AuditEventStore;
  accounts: Accounts;
  sessions: Sessions;
  clients: Clients;
  apis: Apis;
  secondFactors: SecondFactors;
  /** The upstream OpenID Connect connections and the identities linked through them (src/federation/). */
  connections: Connections;
  /** Initial access tokens for dynamic client registration (CLIENT_REGISTRATION=token). */
  registrationTokens: RegistrationTokens;
  /** Passkeys for an issuer, or undefined when the issuer cannot have them (an IP address; src/mfa/relying-party.ts). */
  passkeysFor(issuer: string): Passkeys | undefined;
  /** The running provider: built on first use, rebuilt when the signing keys change. */
  providerHost: ProviderHost;
  /** The mail outbox: `mail.enqueue(message, trx?)` queues a mail, in the caller's transaction when given. */
  mail: Mail;
  /** Delivers the outbox (the server starts it with the maintenance timers; close() stops it). */
  mailSender: MailSender;
  /** Password reset, invitations, email verification and sign-up (the flows through a person's mailbox). */
  recovery: Recovery;
  /** Runs work in one database transaction (`transactions.run(async (trx) => …)`), for a change and its mail. */
  transactions: Transactions;
  /** The purge and the timers a server runs (it starts them). */
  maintenance: Maintenance;
  /** This process's thread pool and how many password hashes run on it at once (the start-up line reports it). */
  threadPool: ThreadPoolPlan;
  /** Waits for the audit rows in flight, closes the database pool and flushes the log. */
  close(): Promise<void>;
};

export type ServiceOptions = {
  /** Where log lines go: stdout unless given (tests capture them; the CLI keeps its stdout clean). */
  logDestination?: DestinationStream;
  /** The clock of the login throttle and the request rate limit (epoch ms): Date.now unless a test moves time. */
  now?: () => number;
};

/**
 * The composition root: opens and migrates the database and builds every store and service the server and the CLI
 * share, the provider host and the periodic jobs; nothing else creates one, and nothing past here sees knex. A server
 * hands the host its issuer once it listens; the CLI's host builds its provider from KEYS_DIR and ISSUER the first
 * time a session ends for a client with a back-channel logout URI.
 */
export async function openServices(config: Config, options: ServiceOptions = {}): Promise<Services> {
  await migrateDatabase(config.databaseUrl, { timeoutMs: config.databaseTimeoutMs });
  const database = openDatabase(config.databaseUrl, { poolSize: config.databasePoolSize, timeoutMs: config.databaseTimeoutMs });
  const logger = createLogger(config.logLevel, options.logDestination);
  const threadPool = planThreadPool(config);

  // The stores: the only code that touches knex.
  const payloads = createOidcPayloadStore(database);
  const auditEvents = createAuditEventStore(database);
  const users = createUserStore(database);
  // The throttles' counters live in the database, so every instance and worker process shares them.
  const counters = createCounterStore(database);
  const apiStore = createApiStore(database);
  const now = options.now ?? Date.now;

  const audit = createAudit({ events: auditEvents, logger });
  const clients = createClients({ clients: createClientStore(database), apis: apiStore, payloads, isProduction: config.isProduction, now });
  const apis = createApis({ apis: apiStore });
  const registrationTokenStore = createRegistrationTokenStore(database);
  const registrationTokens = createRegistrationTokens({ tokens: registrationTokenStore, now });
  const throttle = createLoginThrottle({ counters, settings: config.loginThrottle, now });
  // Second factors' secrets are sealed with a key of their own in KEYS_DIR (docs/mfa.md).
  const secondFactors = createSecondFactors({
    store: createSecondFactorStore(database), box: createSecretBox(path.join(config.keysDir, 'second-factor-secrets.key')),
    totpDriftSteps: config.mfa.totpDriftSteps, now,
  });
  const identities = createFederatedIdentityStore(database);
  const secretBox = createConnectionSecretBox(config.keysDir);
  const upstreams = createUpstreams({
    settings: { timeoutSeconds: config.upstreamTimeoutSeconds, metadataTtlSeconds: config.upstreamMetadataTtlSeconds, now },
    secretBox,
  });
  const connections = createConnections({
    connections: createConnectionStore(database), identities, users, secretBox, upstreams, issuer: config.issuer, now,
  });
  const passkeyStore = createPasskeyStore(database);
  const passkeysFor = (issuer: string) => {
    const found = relyingPartyOf(issuer);
    return 'rp' in found ? createPasskeys({ store: passkeyStore, rp: found.rp, challengeTtlSeconds: config.mfa.passkeyTimeoutSeconds, now }) : undefined;
  };
  const providerHost = createProviderHost({
    keysDir: config.keysDir,
    issuer: config.issuer,
    retentionMs: signingKeyRetentionMs(config),
    logger,
    // Imported on first use (after openServices has returned, so `accounts` below exists): the CLI's other
    // commands then never load oidc-provider at all.
    loadBuilder: async () => (await import('./oidc/app.js')).createAppBuilder({
      config, logger, audit, accounts, account, clients, payloads, throttle, counters, now, secondFactors, passkeysFor, recovery, languages,
      isDatabaseReachable: () => database.isReachable(),
      federation: { connections, identities, upstreams, transactions },
      registrationTokens,
    }),
  });
  const transactions = createTransactions(database);
  const passwordPolicy = createPasswordPolicy({ minLength: config.passwordMinLength });
  const sessions = createSessions({ payloads, backChannel: createBackChannel({ clients, providerHost }) });
  const hasher = createPasswordHasher({ concurrency: threadPool.hashingConcurrency, queueLength: config.passwordHashQueueLength });
  const accounts = createAccounts({ users, sessions, passwordPolicy, transactions, hasher, logger });
  const outbox = createOutboxStore(database);
  const accountTokens = createAccountTokenStore(database);
  // Mailed links derive from the issuer (never from a request's Host); the CLI has only the configured one.
  const issuer = () => providerHost.issuer() ?? `http://localhost:${config.port}`;
  const mailSender = createMailSender({
    outbox, audit, logger, now, settings: config.mail,
    transport: config.mail.smtpUrl
      ? createSmtpTransport({ smtpUrl: config.mail.smtpUrl, from: config.mail.emailFrom, timeoutMs: config.mail.smtpTimeoutMs, messageIdDomain: () => new URL(issuer()).hostname })
      : createLogTransport(logger, { isProduction: config.isProduction }),
  });
  // The pages and the mails a request causes speak the request's language (docs/translations.md).
  const languages = createLanguages();
  const mail = createMail({ outbox, templates: createMailTemplates(languages), issuer, now, onQueued: () => mailSender.wake() });
  // Hourly limits of the forms that send mail (reset, sign-up, verification, email change), in the shared counters.
  const limits = createRequestLimits({ counters, now });
  const recovery = createRecovery({ config, accounts, users, hasher, tokens: accountTokens, limits, mail, transactions, audit, logger, now });
  const account = createAccountServices({
    config, accounts, sessions, throttle, audit, mail, transactions, payloads, clients, auditEvents, accountTokens, limits, issuer, now,
  });
  const maintenance = createMaintenance({
    config, sessions, auditEvents, providerHost, logger, mailSender,
    deleteExpiredThrottleCounters: (at, batchSize) => counters.deleteExpired(at, batchSize),
    deleteFinishedMails: (before, batchSize) => outbox.deleteFinishedBefore(before, batchSize),
    deleteExpiredAccountTokens: (at, batchSize) => accountTokens.deleteExpired(at, batchSize),
    deleteExpiredRegistrationTokens: (at, batchSize) => registrationTokenStore.deleteExpired(at, batchSize),
  });
  return {
    logger, audit, auditEvents, sessions, accounts, clients, apis, secondFactors, passkeysFor, connections, registrationTokens, providerHost,
    maintenance, threadPool, mail, mailSender, transactions, recovery,
    async close() {
      await recovery.settled();
      await mailSender.stop();
      await audit.settled();
      await database.destroy();
      // stdout is written asynchronously; the last lines must be out before the process exits.
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    },
  };
}
