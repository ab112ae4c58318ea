import Provider, { errors, type Adapter } from 'oidc-provider';
import type { Clients } from '../registry/clients.js';
import type { DynamicClients } from '../registration/dynamic-clients.js';
import { UserFacingError } from '../user-facing-error.js';
import type { OidcPayloadStore, StoredPayload } from '../store/oidc-payloads.js';
import { clientMetadata } from './client-metadata.js';

/** The tokens whose requests look up their grant and session next: userinfo, introspection, refresh, code exchange. */
const readsRelated = new Set(['AccessToken', 'RefreshToken', 'AuthorizationCode']);

/**
 * The grant and session read in the same statement as a token, for the Grant.find and Session.findByUid that the
 * same request makes right after: three lookups in one trip to the database. Held on
 * the request's context (oidc-provider's `Provider.ctx`), each row answers one lookup of that request only and is
 * then forgotten; any write through the adapter during the request forgets them all. Nothing outlives the request,
 * so a grant revoked or a session ended is refused by the next request as before.
 */
const relatedKey = (model: string, column: 'id' | 'uid', value: string) => `${model}\n${column}\n${value}`;

/** The rows read with a request's token, held on that request's context until taken or until a write. */
function createReadWithToken() {
  const held = new WeakMap<object, Map<string, StoredPayload | undefined>>();
  return {
    hold(rows: Map<string, StoredPayload | undefined>): void {
      if (Provider.ctx) held.set(Provider.ctx, rows);
    },
    /** The row read with this request's token for this lookup, once; `undefined` when none was read. */
    take(model: string, column: 'id' | 'uid', value: string): { stored: StoredPayload | undefined } | undefined {
      const rows = Provider.ctx && held.get(Provider.ctx);
      const key = relatedKey(model, column, value);
      if (!rows?.has(key)) return undefined;
      const stored = rows.get(key);
      rows.delete(key);
      return { stored };
    },
    forget(): void {
      if (Provider.ctx) held.delete(Provider.ctx);
    },
  };
}

type ReadWithToken = ReturnType<typeof createReadWithToken>;

/** A registry rule a registration broke, as the RFC 7591 §3.2.2 error that names it. */
function registrationError(error: unknown): unknown {
  if (!(error instanceof UserFacingError)) return error;
  if (!/redirect URI/.test(error.message)) return new errors.InvalidClientMetadata(error.message);
  // oidc-provider's InvalidRedirectUri has a fixed description, written for authorization requests.
  return Object.assign(new errors.InvalidRedirectUri(), { error_description: error.message });
}

/**
 * Clients live in their own table. The CLI manages them through the registry; oidc-provider writes only for dynamic
 * registration and management (RFC 7591/7592), and those writes go through the registry too (dynamic-clients.ts).
 */
function createClientAdapter(clients: Clients, dynamicClients: DynamicClients): Adapter {
  const readOnly = async () => {
    throw new Error('oidc-provider does not consume or revoke clients');
  };
  return {
    async find(id) {
      const client = await clients.find(id);
      return client && clientMetadata(client);
    },
    async upsert(id, metadata) {
      try {
        await dynamicClients.save(id, metadata);
      } catch (error) {
        throw registrationError(error);
      }
    },
    async destroy(id) {
      await dynamicClients.delete(id);
    },
    consume: readOnly,
    revokeByGrantId: readOnly,
    findByUid: async () => undefined,
    findByUserCode: async () => undefined,
  };
}

/** What a lost consume race or a replay means for each one-time artefact. */
function replayError(model: string) {
  return model === 'PushedAuthorizationRequest'
    ? new errors.InvalidRequest('request_uri already used')
    : new errors.InvalidGrant(`${model === 'RefreshToken' ? 'refresh token' : 'grant'} already used`);
}

/**
 * How long a claimed replay-detection id is kept if the save that follows the claim never comes (a crash in
 * between): longer than oidc-provider's 5-minute window for DPoP proofs, after which an old proof fails on `iat`.
 */
const replayClaimTtlMs = 10 * 60 * 1000;

/**
 * oidc-provider detects a replayed DPoP proof (RFC 9449 §11.1) with ReplayDetection.unique: find the proof's id,
 * then save it. Two workers or instances given the same proof at once could both find nothing. Here `find` claims
 * the id in the database in one statement instead: the first request, in whichever process, gets "not seen" and
 * goes on (its save then sets the real expiry), every other one finds it and gets oidc-provider's own replay error.
 */
function createReplayDetectionAdapter(payloads: OidcPayloadStore, now: () => number, related: ReadWithToken): Adapter {
  const adapter = createPayloadAdapter('ReplayDetection', payloads, now, related);
  return {
    ...adapter,
    async find(id) {
      const at = now();
      return (await payloads.claim('ReplayDetection', id, at + replayClaimTtlMs, at)) ? undefined : { jti: id };
    },
  };
}

function createPayloadAdapter(model: string, payloads: OidcPayloadStore, now: () => number, related: ReadWithToken): Adapter {
  const withConsumed = (stored: Awaited<ReturnType<OidcPayloadStore['find']>>) =>
    stored && (stored.consumedAt === null ? stored.payload : { ...stored.payload, consumed: Math.floor(stored.consumedAt / 1000) });

  return {
    async upsert(id, payload, expiresIn) {
      related.forget();
      await payloads.upsert({
        model,
        id,
        payload,
        grantId: payload.grantId,
        uid: payload.uid,
        userCode: payload.userCode,
        accountId: payload.accountId,
        clientId: payload.clientId,
        expiresAt: expiresIn ? now() + expiresIn * 1000 : null,
      });
    },
    async find(id) {
      if (!readsRelated.has(model)) return withConsumed((related.take(model, 'id', id) ?? { stored: await payloads.find(model, id, now()) }).stored);
      const found = await payloads.findWithRelated(model, id, now());
      if (!found) return undefined;
      const { grantId, sessionUid } = found.token.payload;
      const rows = new Map<string, StoredPayload | undefined>();
      if (typeof grantId === 'string') rows.set(relatedKey('Grant', 'id', grantId), found.grant);
      if (typeof sessionUid === 'string') rows.set(relatedKey('Session', 'uid', sessionUid), found.session);
      related.hold(rows);
      return withConsumed(found.token);
    },
    async findByUid(uid) {
      return withConsumed((related.take(model, 'uid', uid) ?? { stored: await payloads.findByUid(model, uid, now()) }).stored);
    },
    async findByUserCode(userCode) {
      return withConsumed(await payloads.findByUserCode(model, userCode, now()));
    },
    /**
     * oidc-provider checks `consumed` and then calls consume(); two parallel requests can both pass that check.
     * The store's conditional UPDATE lets exactly one win; the loser is a replay (RFC 6749 §4.1.2, RFC 9700
     * §4.14.2): the whole grant is revoked and the request fails with invalid_grant. No grace window.
     */
    async consume(id) {
      related.forget();
      const result = await payloads.consume(model, id, now());
      if (result.won) return;
      if (result.grantId) await payloads.deleteGrant(result.grantId);
      throw replayError(model);
    },
    async destroy(id) {
      related.forget();
      await payloads.delete(model, id);
    },
    async revokeByGrantId(grantId) {
      related.forget();
      await payloads.deleteByGrantId(model, grantId);
    },
  };
}

export function createAdapterFactory(deps: { payloads: OidcPayloadStore; clients: Clients; dynamicClients: DynamicClients; now?: () => number }) {
  const now = deps.now ?? Date.now;
  const related = createReadWithToken();
  return (model: string): Adapter => {
    if (model === 'Client') return createClientAdapter(deps.clients, deps.dynamicClients);
    if (model === 'ReplayDetection') return createReplayDetectionAdapter(deps.payloads, now, related);
    return createPayloadAdapter(model, deps.payloads, now, related);
  };
}
