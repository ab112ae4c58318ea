import { randomBytes } from 'node:crypto';
import type { Client, ClientStore } from '../store/clients.js';

export const supportedGrantTypes = ['authorization_code', 'refresh_token', 'client_credentials'] as const;

export class RegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * RFC 9700 §2.1 and RFC 8252: exact, absolute redirect URIs without fragments; plain http only to the loopback
 * interface; private-use schemes for native apps must be reverse-domain names (contain a dot).
 */
export function checkRedirectUri(value: string, label: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RegistryError(`${label} "${value}" is not an absolute URI`);
  }
  if (url.hash || value.includes('#')) throw new RegistryError(`${label} "${value}" must not contain a fragment`);
  if (url.protocol === 'http:' && !loopbackHosts.has(url.hostname)) {
    throw new RegistryError(`${label} "${value}" must use https (http is allowed only for localhost)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:' && !url.protocol.slice(0, -1).includes('.')) {
    throw new RegistryError(`${label} "${value}" must use https, or a reverse-domain private-use scheme for native apps`);
  }
  if (url.username || url.password) throw new RegistryError(`${label} "${value}" must not contain credentials`);
  return value;
}

/**
 * OpenID Connect Back-Channel Logout 1.0 §2.2: an absolute http(s) URI without a fragment. Latchkey POSTs logout
 * tokens to it server to server, so plain http (token in clear text) is refused in production except on localhost.
 */
export function checkBackchannelLogoutUri(value: string, isProduction: boolean): string {
  const label = 'back-channel logout URI';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RegistryError(`${label} "${value}" is not an absolute URI`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new RegistryError(`${label} "${value}" must use https or http`);
  if (url.hash || value.includes('#')) throw new RegistryError(`${label} "${value}" must not contain a fragment`);
  if (url.username || url.password) throw new RegistryError(`${label} "${value}" must not contain credentials`);
  if (isProduction && url.protocol === 'http:' && !loopbackHosts.has(url.hostname)) {
    throw new RegistryError(`${label} "${value}" must use https when NODE_ENV=production (http is allowed only for localhost)`);
  }
  return value;
}

export type NewClient = {
  clientId: string;
  clientSecret?: string;
  isPublic?: boolean;
  name?: string;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  grantTypes?: string[];
  skipConsent?: boolean;
  backchannelLogoutUri?: string;
  /** Whether logout tokens carry `sid` (and ID tokens too); Back-Channel Logout 1.0 §2.2, default true here. */
  backchannelLogoutSessionRequired?: boolean;
};

export type Clients = ReturnType<typeof createClients>;

export function createClients(deps: { clients: ClientStore; isProduction: boolean; now?: () => number }) {
  const { clients, isProduction } = deps;
  const now = deps.now ?? Date.now;

  return {
    /** Registers a client; a confidential client without a given secret gets a generated 256-bit one. */
    async register(input: NewClient): Promise<Client> {
      if (!/^[A-Za-z0-9._~-]{1,200}$/.test(input.clientId)) {
        throw new RegistryError('client id must be 1-200 characters of letters, digits and . _ ~ -');
      }
      const grantTypes = input.grantTypes?.length ? [...new Set(input.grantTypes)] : ['authorization_code', 'refresh_token'];
      for (const grantType of grantTypes) {
        if (!(supportedGrantTypes as readonly string[]).includes(grantType)) {
          throw new RegistryError(`unsupported grant type "${grantType}" (supported: ${supportedGrantTypes.join(', ')})`);
        }
      }
      if (grantTypes.includes('refresh_token') && !grantTypes.includes('authorization_code')) {
        throw new RegistryError('the refresh_token grant needs the authorization_code grant');
      }
      const redirectUris = (input.redirectUris ?? []).map((uri) => checkRedirectUri(uri, 'redirect URI'));
      if (grantTypes.includes('authorization_code') && redirectUris.length === 0) {
        throw new RegistryError('a client using authorization_code needs at least one --redirect-uri');
      }
      if (input.isPublic && input.clientSecret) throw new RegistryError('a public client has no secret');
      if (input.isPublic && grantTypes.includes('client_credentials')) {
        throw new RegistryError('a public client cannot use client_credentials');
      }
      if (input.backchannelLogoutSessionRequired !== undefined && input.backchannelLogoutUri === undefined) {
        throw new RegistryError('backchannel_logout_session_required needs a back-channel logout URI');
      }
      if (input.clientSecret !== undefined && input.clientSecret.length < 32) {
        throw new RegistryError('a client secret must have at least 32 characters');
      }
      const client: Client = {
        clientId: input.clientId,
        clientSecret: input.isPublic ? null : input.clientSecret ?? randomBytes(32).toString('base64url'),
        name: input.name ?? null,
        redirectUris,
        postLogoutRedirectUris: (input.postLogoutRedirectUris ?? []).map((uri) => checkRedirectUri(uri, 'post-logout redirect URI')),
        grantTypes,
        tokenEndpointAuthMethod: input.isPublic ? 'none' : 'client_secret_basic',
        isFirstParty: input.skipConsent ?? false,
        backchannelLogoutUri: input.backchannelLogoutUri === undefined ? null : checkBackchannelLogoutUri(input.backchannelLogoutUri, isProduction),
        backchannelLogoutSessionRequired: input.backchannelLogoutSessionRequired ?? true,
        createdAt: now(),
      };
      await clients.insert(client);
      return client;
    },
    find: clients.find,
    list: clients.list,
    delete: clients.delete,
  };
}
