import { isLoopbackHost, readAbsoluteUri } from '../absolute-uri.js';
import type { ApiAccess } from '../store/clients.js';
import { UserFacingError } from '../user-facing-error.js';
import { applicationTypes, isApplicationType, redirectUriProblem, webOriginProblem, type ApplicationType } from './client-kinds.js';

/** RFC 8628 §3.4: the device authorization grant, for devices and CLIs that cannot receive a redirect (src/device/). */
export const deviceCodeGrantType = 'urn:ietf:params:oauth:grant-type:device_code';

export const supportedGrantTypes = ['authorization_code', 'refresh_token', 'client_credentials', deviceCodeGrantType] as const;

export class RegistryError extends UserFacingError {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

/**
 * User ids are random UUIDs (accounts.ts), and a client_credentials access token's `sub` is the client id (RFC 9068
 * §2.2): a client id of that shape could equal a user's `sub`, and an API keyed on `sub` would take the service for
 * that user. Client ids are therefore never shaped like a UUID, in any letter case, so the two never meet.
 */
const uuidShape = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuidShaped(clientId: string): boolean {
  return uuidShape.test(clientId);
}

/** An absolute URI without fragment or credentials (absolute-uri.ts), or a RegistryError naming what it is. */
export function absoluteUri(value: string, label: string): URL {
  const read = readAbsoluteUri(value);
  if ('problem' in read) throw new RegistryError(`${label} "${value}" ${read.problem}`);
  return read.url;
}

/**
 * RFC 9700 §2.1 and RFC 8252: exact, absolute redirect URIs without fragments; plain http only to the loopback
 * interface; private-use schemes for native apps must be reverse-domain names (contain a dot); and what each
 * application type may register (client-kinds.ts).
 */
export function checkRedirectUri(value: string, label: string, applicationType: ApplicationType = 'web'): string {
  const url = absoluteUri(value, label);
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    throw new RegistryError(`${label} "${value}" must use https (http is allowed only for localhost)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:' && !url.protocol.slice(0, -1).includes('.')) {
    throw new RegistryError(`${label} "${value}" must use https, or a reverse-domain private-use scheme for native apps`);
  }
  const problem = redirectUriProblem(url, applicationType);
  if (problem) throw new RegistryError(`${label} "${value}" ${problem}`);
  return value;
}

/**
 * OpenID Connect Back-Channel Logout 1.0 §2.2: an absolute http(s) URI without a fragment. Latchkey POSTs logout
 * tokens to it server to server, so plain http (token in clear text) is refused in production except on localhost.
 */
export function checkBackchannelLogoutUri(value: string, isProduction: boolean): string {
  const label = 'back-channel logout URI';
  const url = absoluteUri(value, label);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new RegistryError(`${label} "${value}" must use https or http`);
  if (isProduction && url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    throw new RegistryError(`${label} "${value}" must use https when NODE_ENV=production (http is allowed only for localhost)`);
  }
  return value;
}

/** What an operator (or a registration) chooses about a client, and `update` may change; lists replace. */
export type ClientSettings = {
  name?: string | null;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  grantTypes?: string[];
  skipConsent?: boolean;
  /** 'web' (default) or 'native' (RFC 8252); a string here, so the registry alone says what is valid. */
  applicationType?: string;
  /** RFC 9449 §5.2 `dpop_bound_access_tokens`: every access token of the client must be DPoP-bound. */
  requireDpop?: boolean;
  /** RFC 9126 §6 `require_pushed_authorization_requests`. */
  requirePar?: boolean;
  webOrigins?: string[];
  /** Its users must give a second factor even when MFA=optional (docs/mfa.md). */
  requireMfa?: boolean;
  /** The APIs the client may obtain access tokens for; none when absent. */
  apis?: ApiAccess[];
};

/** Every rule a client's settings must meet, on creation and after each update; returns them normalised. */
export function checkSettings(settings: Required<Pick<ClientSettings,
  'grantTypes' | 'redirectUris' | 'postLogoutRedirectUris' | 'applicationType' | 'requirePar' | 'webOrigins'>>, isPublic: boolean) {
  const grantTypes = settings.grantTypes.length > 0 ? [...new Set(settings.grantTypes)] : ['authorization_code', 'refresh_token'];
  for (const grantType of grantTypes) {
    if (!(supportedGrantTypes as readonly string[]).includes(grantType)) {
      throw new RegistryError(`unsupported grant type "${grantType}" (supported: ${supportedGrantTypes.join(', ')})`);
    }
  }
  if (grantTypes.includes('refresh_token') && !grantTypes.includes('authorization_code') && !grantTypes.includes(deviceCodeGrantType)) {
    throw new RegistryError(`the refresh_token grant needs the authorization_code or the ${deviceCodeGrantType} grant`);
  }
  const { applicationType } = settings;
  if (!isApplicationType(applicationType)) {
    throw new RegistryError(`application type must be ${applicationTypes.join(' or ')}, not "${applicationType}"`);
  }
  const redirectUris = [...new Set(settings.redirectUris)].map((uri) => checkRedirectUri(uri, 'redirect URI', applicationType));
  if (grantTypes.includes('authorization_code') && redirectUris.length === 0) {
    throw new RegistryError('a client using authorization_code needs at least one --redirect-uri');
  }
  if (isPublic && grantTypes.includes('client_credentials')) throw new RegistryError('a public client cannot use client_credentials');
  if (settings.requirePar && !grantTypes.includes('authorization_code')) {
    throw new RegistryError('pushed authorization requests are for clients using authorization_code');
  }
  if (applicationType === 'native' && settings.webOrigins.length > 0) {
    throw new RegistryError('web origins are for browser apps: a native app sends no Origin of its own');
  }
  for (const origin of settings.webOrigins) {
    const problem = webOriginProblem(origin);
    if (problem) throw new RegistryError(`web origin "${origin}" ${problem}`);
  }
  return {
    grantTypes,
    applicationType,
    redirectUris,
    postLogoutRedirectUris: [...new Set(settings.postLogoutRedirectUris)]
      .map((uri) => checkRedirectUri(uri, 'post-logout redirect URI', applicationType)),
    webOrigins: [...new Set(settings.webOrigins)],
  };
}
