import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { AccountServices } from '../account/account-services.js';
import { createAccountRoutes } from '../account/routes.js';
import { recordSessionActivity } from '../account/session-activity.js';
import type { Accounts } from '../accounts/accounts.js';
import type { LoginThrottle } from '../accounts/login-throttle.js';
import type { Audit } from '../audit.js';
import type { Config } from '../config.js';
import { deviceFlowFeature, useDeviceFlowLimits } from '../device/device-flow.js';
import type { Connections } from '../federation/connections.js';
import { createFederationRoutes } from '../federation/routes.js';
import { createFederatedSignIn } from '../federation/sign-in.js';
import type { Upstreams } from '../federation/upstream.js';
import { createHttpRoutes } from '../http-routes.js';
import { createCsrf } from '../interaction/csrf.js';
import { createInteractionRoutes } from '../interaction/routes.js';
import { addAccountSelection } from '../interaction/select-account.js';
import { createAccountSecurityRoutes } from '../mfa/account-security.js';
import { createInteractionPolicy } from '../mfa/interaction-policy.js';
import { createSecondFactorStep } from '../mfa/sign-in-step.js';
import { createPasskeyAssetRoutes } from '../mfa/passkey-assets.js';
import { acrValues } from '../mfa/requirement.js';
import type { Passkeys } from '../mfa/passkeys.js';
import type { SecondFactors } from '../mfa/second-factors.js';
import { createEmailGate } from '../recovery/email-gate.js';
import { createPageCsrf } from '../recovery/page-csrf.js';
import type { Recovery } from '../recovery/recovery.js';
import { createReturnToSignIn } from '../recovery/return-to-sign-in.js';
import { createRecoveryRoutes } from '../recovery/routes.js';
import { createSignInTicket } from '../recovery/sign-in-ticket.js';
import type { Clients } from '../registry/clients.js';
import { createDynamicClients } from '../registration/dynamic-clients.js';
import { guardRegistration } from '../registration/guard.js';
import type { RegistrationTokens } from '../registration/registration-tokens.js';
import { bindRequestsToIssuer, refuseOtherHosts } from '../issuer-origin.js';
import { securityHeaders } from '../security-headers.js';
import { statefulRequestLimit } from '../stateful-request-limit.js';
import type { CounterStore } from '../store/counters.js';
import type { FederatedIdentityStore } from '../store/federated-identities.js';
import type { Transactions } from '../store/transactions.js';
import type { OidcPayloadStore } from '../store/oidc-payloads.js';
import { createViews } from '../views.js';
import type { Languages } from '../i18n/languages.js';
import { createAdapterFactory } from './adapter.js';
import { anonymousWriteRoutes, limitAnonymousRequests } from './anonymous-requests.js';
import { auditProviderEvents } from './audit-events.js';
import { redirectPostsToGet } from './authorization-post.js';
import { logBackChannelFailures } from './back-channel-logout.js';
import { createFindAccount } from './claims.js';
import { connectionParam } from './connection-param.js';
import { createProviderPages } from './pages.js';
import { addSessionCutoff } from './session-cutoff.js';
import { acceptPreviousSecret } from './previous-secret.js';
import { createProvider } from './provider.js';
import type { BuildProvider } from './provider-host.js';
import { handleServerErrors } from './server-errors.js';
import { answerInFrontOfKoa, createStaticDocuments } from './static-documents.js';

export type AppDeps = {
  config: Config;
  logger: Logger;
  audit: Audit;
  accounts: Accounts;
  /** The account page (src/account/). */
  account: AccountServices;
  clients: Clients;
  payloads: OidcPayloadStore;
  throttle: LoginThrottle;
  /** The shared counters of the per-IP limit of requests that store something, and its clock. */
  counters: CounterStore;
  now: () => number;
  secondFactors: SecondFactors;
  recovery: Recovery;
  /** The catalogues and the language of the request being answered (src/i18n/). */
  languages: Languages;
  passkeysFor: (issuer: string) => Passkeys | undefined;
  isDatabaseReachable: () => Promise<boolean>;
  /** Sign-in through upstream OpenID Connect connections (src/federation/). */
  federation: { connections: Connections; identities: FederatedIdentityStore; upstreams: Upstreams; transactions: Transactions };
  registrationTokens: RegistrationTokens;
};

/**
 * The provider as the server serves it: oidc-provider with Latchkey's protocol decisions, its events turned into
 * log lines and audit events, and our middleware and routes mounted (`provider.use`). The provider host calls the
 * returned function for every key set; what does not depend on the keys is made once, here.
 */
export function createAppBuilder(deps: AppDeps): BuildProvider {
  const { config, logger, audit } = deps;
  const views = createViews(deps.languages, { passwordResetEnabled: deps.recovery.passwordReset !== undefined, registrationOpen: deps.recovery.signUp !== undefined });
  const pages = createProviderPages(views);
  const adapter = createAdapterFactory({ payloads: deps.payloads, clients: deps.clients, dynamicClients: createDynamicClients(deps.clients) });
  const findAccount = createFindAccount(deps.accounts);
  const deviceFlow = deviceFlowFeature(views);
  // The login prompt's checks: oidc-provider's, a session from before the password changed, a missing second factor;
  // and before it, the account chooser of prompt=select_account.
  const interactionPolicy = addAccountSelection(addSessionCutoff(createInteractionPolicy({ policy: config.mfa.policy, hasFactor: deps.secondFactors.hasFactor })));
  const extraParams = connectionParam(async (id) => (await deps.federation.connections.find(id)) !== undefined);
  // A cached JWKS must show a new key before the key starts signing: every instance has loaded it at most
  // KEYS_RELOAD_INTERVAL after it was created, and it signs from KEYS_ACTIVATION_DELAY after that.
  const documents = {
    '/.well-known/openid-configuration': { maxAgeSeconds: 3600 },
    '/.well-known/jwks.json': { maxAgeSeconds: Math.max(0, config.keysActivationDelaySeconds - config.keysReloadIntervalSeconds) },
  };

  return ({ issuer, signingKeys, cookieSecrets }): Provider => {
    const provider = createProvider({ config, issuer, signingKeys, cookieSecrets, adapter, findAccount, clients: deps.clients, pages, deviceFlow, extraParams,
      interactionPolicy, acrValues: [acrValues.password, acrValues.mfa] });
    acceptPreviousSecret(provider, deps.clients.isPreviousSecret);
    const passkeys = deps.passkeysFor(issuer);
    handleServerErrors(provider, views, logger);
    logBackChannelFailures(provider, (line) => logger.warn(line));
    auditProviderEvents(provider, audit);
    recordSessionActivity(provider, deps.account.activity, (error) => logger.warn({ err: (error as Error).message }, 'could not record session activity'));
    bindRequestsToIssuer(provider, issuer);
    provider.use(deps.languages.speakRequestLanguage);
    provider.use(securityHeaders({ isHttpsIssuer: issuer.startsWith('https:') }));
    provider.use(refuseOtherHosts({ issuer, openPaths: ['/healthz'], refuse: pages.refuse }));
    // Routes where an anonymous request makes Latchkey store a row: first bounded in size (which costs nothing and
    // writes nothing, so an oversized request is refused at once), then limited per IP, before anything is stored.
    provider.use(limitAnonymousRequests({ paths: anonymousWriteRoutes(provider), maxBytes: config.anonymousRequestMaxBytes, refuse: pages.refuse }));
    provider.use(guardRegistration({ settings: config.clientRegistration, counters: deps.counters, tokens: deps.registrationTokens, now: deps.now }));
    provider.use(redirectPostsToGet({ paths: [provider.pathFor('authorization'), provider.pathFor('end_session')], refuse: pages.refuse }));
    provider.use(statefulRequestLimit({ counters: deps.counters, perMinute: config.statefulRequestsPerIpPerMinute, views, now: deps.now }));
    useDeviceFlowLimits(provider, { counters: deps.counters, settings: config.deviceFlow, views, now: deps.now });
    const staticDocuments = createStaticDocuments({ documents, issuer, trustsProxy: provider.proxy });
    provider.use(staticDocuments.middleware);
    answerInFrontOfKoa(provider, staticDocuments.answer);
    provider.use(createHttpRoutes({ isDatabaseReachable: deps.isDatabaseReachable }));
    const isHttps = issuer.startsWith('https:');
    const csrf = createPageCsrf({ key: cookieSecrets.csrfKey, isHttps });
    const returnTo = createReturnToSignIn({ isHttps, ttlSeconds: config.interactionTtlSeconds });
    const emailGate = createEmailGate({ verification: deps.recovery.verification, views, csrf, returnTo, audit, key: cookieSecrets.csrfKey, now: deps.now });
    const signIn = createFederatedSignIn({ issuer, accounts: deps.accounts, payloads: deps.payloads, audit, now: deps.now, ...deps.federation });
    // Both first factors, the password and an upstream connection, continue through the same second step.
    const secondFactor = createSecondFactorStep({
      provider, accounts: deps.accounts, secondFactors: deps.secondFactors, throttle: deps.throttle, audit, views,
      csrf: createCsrf(cookieSecrets.csrfKey), policy: config.mfa.policy, issuer, passkeys,
    });
    provider.use(createFederationRoutes({
      provider, connections: deps.federation.connections, signIn, views, csrfKey: cookieSecrets.csrfKey, afterFirstFactor: secondFactor.afterFirstFactor,
    }));
    const signInTicket = createSignInTicket({ issuer, ttlSeconds: config.mail.inviteSignInTtlSeconds, redeem: deps.recovery.invitations.redeemSignIn });
    if (passkeys) provider.use(createPasskeyAssetRoutes());
    provider.use(createInteractionRoutes({
      provider, accounts: deps.accounts, throttle: deps.throttle, audit, views, csrfKey: cookieSecrets.csrfKey,
      secondFactor, holdUnverified: emailGate.hold, passkeys, signInTicket,
    }));
    provider.use(createAccountSecurityRoutes({
      provider, accounts: deps.accounts, secondFactors: deps.secondFactors, throttle: deps.throttle, audit, views,
      csrfKey: cookieSecrets.csrfKey, policy: config.mfa.policy, passkeys,
    }));
    provider.use(createRecoveryRoutes({ ...deps.recovery, views, csrf, returnTo, emailGate, signInTicket }));
    provider.use(createAccountRoutes({ provider, account: deps.account, accounts: deps.accounts, views, csrfKey: cookieSecrets.csrfKey, now: deps.now }));
    return provider;
  };
}
