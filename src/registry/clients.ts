import { randomBytes } from 'node:crypto';
import { isLoopbackHost, readAbsoluteUri } from '../absolute-uri.js';
import type { ApiStore } from '../store/apis.js';
import { DuplicateClientError, type ApiAccess, type Client, type ClientChanges, type ClientStore } from '../store/clients.js';
import type { OidcPayloadStore } from '../store/oidc-payloads.js';
import { UserFacingError } from '../user-facing-error.js';

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
 * interface; private-use schemes for native apps must be reverse-domain names (contain a dot).
 */
export function checkRedirectUri(value: string, label: string): string {
  const url = absoluteUri(value, label);
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    throw new RegistryError(`${label} "${value}" must use https (http is allowed only for localhost)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:' && !url.protocol.slice(0, -1).includes('.')) {
    throw new RegistryError(`${label} "${value}" must use https, or a reverse-domain private-use scheme for native apps`);
  }
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
  /** The APIs the client may obtain access tokens for; none when absent. */
  apis?: ApiAccess[];
  /** Its users must give a second factor even when MFA=optional (docs/mfa.md). */
  requireMfa?: boolean;
};

/**
 * A client as everything above the store sees it. `skipConsent` is the one name for "this app's users are not asked
 * for consent", the name the operator types (`--skip-consent`) and the one the provider's client metadata carries
 * (`skip_consent`). The store keeps its field and column `is_first_party` (renaming a column takes a migration);
 * this layer is the only place that maps the two.
 */
export type ClientRecord = Omit<Client, 'isFirstParty'> & { skipConsent: boolean };
export type ClientRecordChanges = Omit<ClientChanges, 'isFirstParty'> & { skipConsent?: boolean };

/** A client with the APIs it may use. */
export type RegisteredClient = ClientRecord & { apis: ApiAccess[] };

function toRecord({ isFirstParty, ...client }: Client): ClientRecord {
  return { ...client, skipConsent: isFirstParty };
}

export type Clients = ReturnType<typeof createClients>;

export function createClients(deps: {
  clients: ClientStore;
  apis: ApiStore;
  payloads: OidcPayloadStore;
  isProduction: boolean;
  now?: () => number;
}) {
  const { clients, apis, payloads, isProduction } = deps;
  const now = deps.now ?? Date.now;

  /**
   * RFC 9700 §2.3, RFC 8707 §2: a client gets tokens only for the APIs, and only the scopes of them, it is given
   * here. Each API must be registered and each scope one of its own; an API with no scopes listed gives the
   * audience alone (tokens for it carry no scope of it).
   */
  async function checkApiAccess(clientId: string, list: ApiAccess[]): Promise<ApiAccess[]> {
    if (list.length > 0 && isUuidShaped(clientId)) {
      throw new RegistryError(`client ${clientId} has an id shaped like a UUID, which a user's sub could equal; it cannot be given APIs: register the app again under another client id`);
    }
    const checked = new Map<string, ApiAccess>();
    for (const access of list) {
      if (checked.has(access.audience)) throw new RegistryError(`API ${access.audience} is given twice`);
      const api = await apis.find(access.audience);
      if (!api) throw new RegistryError(`no API ${access.audience} is registered (latchkey apis create --audience …)`);
      const unknown = access.scopes.filter((scope) => !api.scopes.includes(scope));
      if (unknown.length > 0) {
        throw new RegistryError(`API ${api.audience} has no scope ${unknown.join(', ')} (its scopes: ${api.scopes.join(' ') || 'none'})`);
      }
      checked.set(access.audience, { audience: api.audience, scopes: [...new Set(access.scopes)] });
    }
    return [...checked.values()];
  }

  return {
    /**
     * Registers a client; a confidential client without a given secret gets a generated 256-bit one. An id that
     * belonged to a deleted client starts with nothing of it: anything still stored for that id (a token written
     * by a request that was in flight while the old client was deleted) is deleted first.
     */
    async register(input: NewClient): Promise<RegisteredClient> {
      if (!/^[A-Za-z0-9._~-]{1,200}$/.test(input.clientId)) {
        throw new RegistryError('client id must be 1-200 characters of letters, digits and . _ ~ -');
      }
      if (isUuidShaped(input.clientId)) {
        throw new RegistryError('client id must not be shaped like a UUID: user ids are UUIDs, and a service\'s tokens carry its client id where a user\'s carry their id (sub)');
      }
      const grantTypes = input.grantTypes?.length ? [...new Set(input.grantTypes)] : ['authorization_code', 'refresh_token'];
      for (const grantType of grantTypes) {
        if (!(supportedGrantTypes as readonly string[]).includes(grantType)) {
          throw new RegistryError(`unsupported grant type "${grantType}" (supported: ${supportedGrantTypes.join(', ')})`);
        }
      }
      if (grantTypes.includes('refresh_token') && !grantTypes.includes('authorization_code') && !grantTypes.includes(deviceCodeGrantType)) {
        throw new RegistryError(`the refresh_token grant needs the authorization_code or the ${deviceCodeGrantType} grant`);
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
      const apiAccess = await checkApiAccess(input.clientId, input.apis ?? []);
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
        requireMfa: input.requireMfa ?? false,
        createdAt: now(),
      };
      const taken = () => new RegistryError(`a client with id ${client.clientId} already exists`);
      if (await clients.find(client.clientId)) throw taken();
      await payloads.deleteByClientId(client.clientId);
      try {
        await clients.insert(client, apiAccess);
      } catch (error) {
        // The same id registered at the same moment: the store's unique key decides, and the loser is told so.
        throw error instanceof DuplicateClientError ? taken() : error;
      }
      return { ...toRecord(client), apis: apiAccess };
    },

    /** Changes a client's name, consent page, second-factor requirement or APIs (`apis` replaces the list); undefined when there is no such client. */
    async update(clientId: string, changes: ClientRecordChanges): Promise<RegisteredClient | undefined> {
      const { skipConsent, ...rest } = changes;
      const checked: ClientChanges = {
        ...rest,
        ...(skipConsent !== undefined ? { isFirstParty: skipConsent } : {}),
        ...(changes.apis ? { apis: await checkApiAccess(clientId, changes.apis) } : {}),
      };
      if (!(await clients.update(clientId, checked))) return undefined;
      const client = await clients.find(clientId);
      return client && { ...toRecord(client), apis: (await clients.listApis(clientId)).get(clientId) ?? [] };
    },

    /**
     * Deletes a client and everything it was issued: its grants, codes and tokens (opaque access tokens and refresh
     * tokens stop working at once; JWT access tokens, verified offline, until they expire). The client row goes
     * first, so no new token can be issued to it while its old ones are deleted.
     */
    async delete(clientId: string): Promise<boolean> {
      if (!(await clients.delete(clientId))) return false;
      await payloads.deleteByClientId(clientId);
      return true;
    },

    async find(clientId: string): Promise<ClientRecord | undefined> {
      const client = await clients.find(clientId);
      return client && toRecord(client);
    },
    async list(): Promise<ClientRecord[]> {
      return (await clients.list()).map(toRecord);
    },
    listApis: clients.listApis,
    findApiForClient: clients.findApiForClient,
  };
}
