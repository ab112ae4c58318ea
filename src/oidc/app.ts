import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Accounts } from '../accounts/accounts.js';
import type { LoginThrottle } from '../accounts/login-throttle.js';
import type { Audit } from '../audit.js';
import type { Config } from '../config.js';
import { deviceFlowFeature, useDeviceFlowLimits } from '../device/device-flow.js';
import { createHttpRoutes } from '../http-routes.js';
import { createInteractionRoutes } from '../interaction/routes.js';
import { createAccountSecurityRoutes } from '../mfa/account-security.js';
import { createInteractionPolicy } from '../mfa/interaction-policy.js';
import { createPasskeyAssetRoutes } from '../mfa/passkey-assets.js';
import { acrValues } from '../mfa/requirement.js';
import type { Passkeys } from '../mfa/passkeys.js';
import type { SecondFactors } from '../mfa/second-factors.js';
import type { Clients } from '../registry/clients.js';
import { bindRequestsToIssuer, refuseOtherHosts } from '../issuer-origin.js';
import { securityHeaders } from '../security-headers.js';
import { statefulRequestLimit } from '../stateful-request-limit.js';
import type { CounterStore } from '../store/counters.js';
import type { OidcPayloadStore } from '../store/oidc-payloads.js';
import { createViews } from '../views.js';
import { createAdapterFactory } from './adapter.js';
import { anonymousWriteRoutes, limitAnonymousRequests } from './anonymous-requests.js';
import { auditProviderEvents } from './audit-events.js';
import { logBackChannelFailures } from './back-channel-logout.js';
import { createFindAccount } from './claims.js';
import { createProviderPages } from './pages.js';
import { createProvider } from './provider.js';
import type { BuildProvider } from './provider-host.js';
import { handleServerErrors } from './server-errors.js';
import { serveStaticDocuments } from './static-documents.js';

export type AppDeps = {
  config: Config;
  logger: Logger;
  audit: Audit;
  accounts: Accounts;
  clients: Clients;
  payloads: OidcPayloadStore;
  throttle: LoginThrottle;
  /** The shared counters of the per-IP limit of requests that store something, and its clock. */
  counters: CounterStore;
  now: () => number;
  secondFactors: SecondFactors;
  passkeysFor: (issuer: string) => Passkeys | undefined;
  isDatabaseReachable: () => Promise<boolean>;
};

/**
 * The provider as the server serves it: oidc-provider with Latchkey's protocol decisions, its events turned into
 * log lines and audit events, and our middleware and routes mounted (`provider.use`). The provider host calls the
 * returned function for every key set; what does not depend on the keys is made once, here.
 */
export function createAppBuilder(deps: AppDeps): BuildProvider {
  const { config, logger, audit } = deps;
  const views = createViews();
  const pages = createProviderPages(views);
  const adapter = createAdapterFactory({ payloads: deps.payloads, clients: deps.clients });
  const findAccount = createFindAccount(deps.accounts);
  const deviceFlow = deviceFlowFeature(views);
  const interactionPolicy = createInteractionPolicy({ policy: config.mfa.policy, hasFactor: deps.secondFactors.hasFactor });
  // A cached JWKS must show a new key before the key starts signing: every instance has loaded it at most
  // KEYS_RELOAD_INTERVAL after it was created, and it signs from KEYS_ACTIVATION_DELAY after that.
  const staticDocuments = {
    '/.well-known/openid-configuration': { maxAgeSeconds: 3600 },
    '/.well-known/jwks.json': { maxAgeSeconds: Math.max(0, config.keysActivationDelaySeconds - config.keysReloadIntervalSeconds) },
  };

  return ({ issuer, signingKeys, cookieSecrets }): Provider => {
    const provider = createProvider({ config, issuer, signingKeys, cookieSecrets, adapter, findAccount, clients: deps.clients, pages, deviceFlow,
      interactionPolicy, acrValues: [acrValues.password, acrValues.mfa] });
    const passkeys = deps.passkeysFor(issuer);
    handleServerErrors(provider, views, logger);
    logBackChannelFailures(provider, (line) => logger.warn(line));
    auditProviderEvents(provider, audit);
    bindRequestsToIssuer(provider, issuer);
    provider.use(securityHeaders({ isHttpsIssuer: issuer.startsWith('https:') }));
    provider.use(refuseOtherHosts({ issuer, openPaths: ['/healthz'], refuse: pages.refuse }));
    // Routes where an anonymous request makes Latchkey store a row: first bounded in size (which costs nothing and
    // writes nothing, so an oversized request is refused at once), then limited per IP, before anything is stored.
    provider.use(limitAnonymousRequests({ paths: anonymousWriteRoutes(provider), maxBytes: config.anonymousRequestMaxBytes, refuse: pages.refuse }));
    provider.use(statefulRequestLimit({ counters: deps.counters, perMinute: config.statefulRequestsPerIpPerMinute, views, now: deps.now }));
    useDeviceFlowLimits(provider, { counters: deps.counters, settings: config.deviceFlow, views, now: deps.now });
    provider.use(serveStaticDocuments(staticDocuments));
    provider.use(createHttpRoutes({ isDatabaseReachable: deps.isDatabaseReachable }));
    if (passkeys) provider.use(createPasskeyAssetRoutes());
    provider.use(createInteractionRoutes({
      provider, accounts: deps.accounts, throttle: deps.throttle, audit, views, csrfKey: cookieSecrets.csrfKey,
      secondFactors: deps.secondFactors, mfaPolicy: config.mfa.policy, passkeys,
    }));
    provider.use(createAccountSecurityRoutes({
      provider, accounts: deps.accounts, secondFactors: deps.secondFactors, throttle: deps.throttle, audit, views,
      csrfKey: cookieSecrets.csrfKey, policy: config.mfa.policy, passkeys,
    }));
    return provider;
  };
}
