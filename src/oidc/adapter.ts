import Provider, { errors, type Adapter } from 'oidc-provider';
import type { Clients } from '../registry/clients.js';
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
const readWithToken = new WeakMap<object, Map<string, StoredPayload | undefined>>();
const relatedKey = (model: string, column: 'id' | 'uid', value: string) => `${model}\n${column}\n${value}`;

/** The row read with this request's token for this lookup, once; `undefined` when none was read. */
function takeReadWithToken(model: string, column: 'id' | 'uid', value: string): { stored: StoredPayload | undefined } | undefined {
  const rows = Provider.ctx && readWithToken.get(Provider.ctx);
  const key = relatedKey(model, column, value);
  if (!rows?.has(key)) return undefined;
  const stored = rows.get(key);
  rows.delete(key);
  return { stored };
}

function forgetReadWithToken(): void {
  if (Provider.ctx) readWithToken.delete(Provider.ctx);
}

/** Clients are managed by the CLI in their own table; the provider only reads them. */
function createClientAdapter(clients: Clients): Adapter {
  const readOnly = async () => {
    throw new Error('clients are read-only to the provider; manage them with `latchkey clients`');
  };
  return {
    async find(id) {
      const client = await clients.find(id);
      return client && clientMetadata(client);
    },
    upsert: readOnly,
    destroy: readOnly,
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

function createPayloadAdapter(model: string, payloads: OidcPayloadStore, now: () => number): Adapter {
  const withConsumed = (stored: Awaited<ReturnType<OidcPayloadStore['find']>>) =>
    stored && (stored.consumedAt === null ? stored.payload : { ...stored.payload, consumed: Math.floor(stored.consumedAt / 1000) });

  return {
    async upsert(id, payload, expiresIn) {
      forgetReadWithToken();
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
      if (!readsRelated.has(model)) return withConsumed((takeReadWithToken(model, 'id', id) ?? { stored: await payloads.find(model, id, now()) }).stored);
      const found = await payloads.findWithRelated(model, id, now());
      if (!found) return undefined;
      const { grantId, sessionUid } = found.token.payload;
      if (Provider.ctx) {
        const rows = new Map<string, StoredPayload | undefined>();
        if (typeof grantId === 'string') rows.set(relatedKey('Grant', 'id', grantId), found.grant);
        if (typeof sessionUid === 'string') rows.set(relatedKey('Session', 'uid', sessionUid), found.session);
        readWithToken.set(Provider.ctx, rows);
      }
      return withConsumed(found.token);
    },
    async findByUid(uid) {
      return withConsumed((takeReadWithToken(model, 'uid', uid) ?? { stored: await payloads.findByUid(model, uid, now()) }).stored);
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
      forgetReadWithToken();
      const result = await payloads.consume(model, id, now());
      if (result.won) return;
      if (result.grantId) await payloads.deleteGrant(result.grantId);
      throw replayError(model);
    },
    async destroy(id) {
      forgetReadWithToken();
      await payloads.delete(model, id);
    },
    async revokeByGrantId(grantId) {
      forgetReadWithToken();
      await payloads.deleteByGrantId(model, grantId);
    },
  };
}

export function createAdapterFactory(deps: { payloads: OidcPayloadStore; clients: Clients; now?: () => number }) {
  const now = deps.now ?? Date.now;
  return (model: string): Adapter =>
    model === 'Client' ? createClientAdapter(deps.clients) : createPayloadAdapter(model, deps.payloads, now);
}
