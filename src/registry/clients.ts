import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiStore } from '../store/apis.js';
import { DuplicateClientError, type ApiAccess, type Client, type ClientChanges, type ClientStore } from '../store/clients.js';
import type { OidcPayloadStore } from '../store/oidc-payloads.js';
import { checkBackchannelLogoutUri, checkSettings, isUuidShaped, RegistryError, type ClientSettings } from './client-rules.js';

export type NewClient = ClientSettings & {
  clientId: string;
  clientSecret?: string;
  isPublic?: boolean;
  backchannelLogoutUri?: string;
  /** Whether logout tokens carry `sid` (and ID tokens too); Back-Channel Logout 1.0 §2.2, default true here. */
  backchannelLogoutSessionRequired?: boolean;
};

/** Compares secrets in constant time, also when their lengths differ (the digests are of equal length). */
function isSameSecret(expected: string, presented: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(expected), digest(presented));
}

/**
 * A client as everything above the store sees it. `skipConsent` is the one name for "this app's users are not asked
 * for consent", the name the operator types (`--skip-consent`) and the one the provider's client metadata carries
 * (`skip_consent`). The store keeps its field and column `is_first_party` (renaming a column takes a migration);
 * this layer is the only place that maps the two.
 */
export type ClientRecord = Omit<Client, 'isFirstParty'> & { skipConsent: boolean };

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
      if (input.isPublic && input.clientSecret) throw new RegistryError('a public client has no secret');
      const settings = checkSettings({
        grantTypes: input.grantTypes ?? [],
        redirectUris: input.redirectUris ?? [],
        postLogoutRedirectUris: input.postLogoutRedirectUris ?? [],
        applicationType: input.applicationType ?? 'web',
        requirePar: input.requirePar ?? false,
        webOrigins: input.webOrigins ?? [],
      }, input.isPublic === true);
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
        ...settings,
        requireDpop: input.requireDpop ?? false,
        requirePar: input.requirePar ?? false,
        previousClientSecret: null,
        previousClientSecretExpiresAt: null,
        tokenEndpointAuthMethod: input.isPublic ? 'none' : 'client_secret_basic',
        isFirstParty: input.skipConsent ?? false,
        requireMfa: input.requireMfa ?? false,
        backchannelLogoutUri: input.backchannelLogoutUri === undefined ? null : checkBackchannelLogoutUri(input.backchannelLogoutUri, isProduction),
        backchannelLogoutSessionRequired: input.backchannelLogoutSessionRequired ?? true,
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

    /**
     * Changes what `changes` gives (lists replace; `addRedirectUris` adds) and checks the client as it would be
     * against every rule `register` applies; undefined when there is no such client.
     */
    async update(clientId: string, changes: ClientSettings & { addRedirectUris?: string[] }): Promise<RegisteredClient | undefined> {
      const current = await clients.find(clientId);
      if (!current) return undefined;
      const settings = checkSettings({
        grantTypes: changes.grantTypes ?? current.grantTypes,
        redirectUris: [...(changes.redirectUris ?? current.redirectUris), ...(changes.addRedirectUris ?? [])],
        postLogoutRedirectUris: changes.postLogoutRedirectUris ?? current.postLogoutRedirectUris,
        applicationType: changes.applicationType ?? current.applicationType,
        requirePar: changes.requirePar ?? current.requirePar,
        webOrigins: changes.webOrigins ?? current.webOrigins,
      }, current.clientSecret === null);
      const checked: ClientChanges = {
        ...settings,
        ...(changes.name !== undefined ? { name: changes.name } : {}),
        ...(changes.skipConsent !== undefined ? { isFirstParty: changes.skipConsent } : {}),
        ...(changes.requireDpop !== undefined ? { requireDpop: changes.requireDpop } : {}),
        ...(changes.requirePar !== undefined ? { requirePar: changes.requirePar } : {}),
        ...(changes.requireMfa !== undefined ? { requireMfa: changes.requireMfa } : {}),
        ...(changes.apis ? { apis: await checkApiAccess(clientId, changes.apis) } : {}),
      };
      if (!(await clients.update(clientId, checked))) return undefined;
      const client = await clients.find(clientId);
      return client && { ...toRecord(client), apis: (await clients.listApis(clientId)).get(clientId) ?? [] };
    },

    /**
     * Gives a confidential client a new generated secret, returned once. The current one keeps working for
     * `keepOldForSeconds` (0: it stops at once), so the app can switch without downtime; a second rotation ends the
     * first one's window. Undefined when there is no such client; a public client has no secret to rotate.
     */
    async rotateSecret(clientId: string, keepOldForSeconds: number): Promise<string | undefined> {
      const client = await clients.find(clientId);
      if (!client) return undefined;
      if (client.clientSecret === null) throw new RegistryError(`client ${clientId} is public and has no secret`);
      const secret = randomBytes(32).toString('base64url');
      if (!(await clients.rotateSecret(clientId, secret, now() + keepOldForSeconds * 1000))) return undefined;
      return secret;
    },

    /** Whether `presented` is the client's previous secret and its window is still open (rotateSecret). */
    async isPreviousSecret(clientId: string, presented: string): Promise<boolean> {
      const client = await clients.find(clientId);
      if (!client?.previousClientSecret || client.previousClientSecretExpiresAt === null) return false;
      return now() < client.previousClientSecretExpiresAt && isSameSecret(client.previousClientSecret, presented);
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
