import { createHash, timingSafeEqual } from 'node:crypto';
import * as oidc from 'openid-client';
import type { Accounts } from '../accounts/accounts.js';
import { normalizeEmail } from '../accounts/email.js';
import type { Audit } from '../audit.js';
import type { StoredConnection } from '../store/connections.js';
import type { FederatedIdentityStore } from '../store/federated-identities.js';
import type { Transactions } from '../store/transactions.js';
import type { OidcPayloadStore } from '../store/oidc-payloads.js';
import type { User } from '../store/users.js';
import { callbackUri, type Connections } from './connections.js';
import { createFederationEvents, type Attempt, type Failure, type FailureReason } from './events.js';
import type { UpstreamProfile } from './linking.js';
import { createProvisioning } from './provisioning.js';
import type { Upstreams } from './upstream.js';

/** The oidc_payloads model of a flow in progress: one row per upstream request, keyed by a hash of its `state`. */
const pendingModel = 'FederatedSignIn';
type Pending = { uid: string; connectionId: string; state: string; nonce: string; codeVerifier: string };

const stateKey = (state: string) => createHash('sha256').update(`latchkey-federation-state:${state}`).digest('base64url');
const sameText = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : null);

function profileOf(claims: oidc.IDToken, userinfo: oidc.UserInfoResponse | undefined): UpstreamProfile {
  // Email and its verification come from the same source: userinfo when it has an email, else the ID token.
  const source: Record<string, unknown> = userinfo?.email !== undefined ? userinfo : claims;
  const email = text(source.email);
  return {
    subject: claims.sub,
    email: email === null ? null : normalizeEmail(email),
    emailVerified: source.email_verified === true,
    givenName: text(userinfo?.given_name ?? claims.given_name)?.slice(0, 200) ?? null,
    familyName: text(userinfo?.family_name ?? claims.family_name)?.slice(0, 200) ?? null,
  };
}

/** Maps what openid-client threw while finishing the flow to what the person is told. */
function failureOf(error: unknown): FailureReason {
  if (error instanceof oidc.AuthorizationResponseError) return error.error === 'access_denied' ? 'cancelled' : 'upstream_error';
  // The upstream refused the code exchange (invalid_client after a secret was changed there, say).
  if (error instanceof oidc.ResponseBodyError || error instanceof oidc.WWWAuthenticateChallengeError) return 'upstream_error';
  const { name, code, cause } = error as { name?: string; code?: string; cause?: { name?: string } };
  if (name === 'SecretBoxError') return 'connection_misconfigured';
  const isTimeout = [name, cause?.name].some((what) => what === 'TimeoutError' || what === 'AbortError');
  if (isTimeout || name === 'UpstreamError' || error instanceof TypeError) return 'upstream_unavailable';
  if (code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || code === 'OAUTH_RESPONSE_IS_NOT_JSON') return 'upstream_unavailable';
  return 'invalid_response';
}

/**
 * The relying-party side of a sign-in through an upstream connection, with openid-client: authorization code, PKCE
 * S256, `state` and `nonce`, all stored server-side against the interaction that started it; the ID token is
 * validated by openid-client (signature through the upstream's JWKS, iss, aud, azp, exp, iat, nonce) and only then
 * is the linking policy (linking.ts) applied. Failures are values, never exceptions, and each one is audited.
 */
export function createFederatedSignIn(deps: {
  issuer: string; connections: Connections; identities: FederatedIdentityStore; accounts: Accounts; upstreams: Upstreams;
  payloads: OidcPayloadStore; audit: Audit; transactions: Transactions; now: () => number;
}) {
  const { connections, identities, accounts, upstreams, payloads, audit, now } = deps;

  const { refuse, record } = createFederationEvents(audit);
  const provisioning = createProvisioning({ identities, accounts, transactions: deps.transactions, now, refuse, record });

  return {
    /** The URL to send the browser to at the upstream; the flow's secrets are stored against the interaction `uid`. */
    async begin(connectionId: string, attempt: Attempt, interactionExpiresAt: number): Promise<{ redirectTo: string } | Failure> {
      const connection = await connections.find(connectionId);
      if (!connection) return refuse(attempt, { failure: 'unknown_connection' }, { connection: connectionId });
      let configuration: oidc.Configuration;
      try {
        configuration = await upstreams.configurationFor(connection);
      } catch (error) {
        return refuse(attempt, { failure: failureOf(error), connection }, { error: (error as Error).message });
      }
      const pending: Pending = {
        uid: attempt.uid, connectionId, state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier: oidc.randomPKCECodeVerifier(),
      };
      await payloads.upsert({ model: pendingModel, id: stateKey(pending.state), uid: attempt.uid, payload: pending, expiresAt: interactionExpiresAt });
      const url = oidc.buildAuthorizationUrl(configuration, {
        redirect_uri: callbackUri(deps.issuer, connectionId),
        scope: connection.scopes.join(' '),
        code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
        code_challenge_method: 'S256',
        state: pending.state,
        nonce: pending.nonce,
      });
      record(attempt, { type: 'federation.started', details: { connection: connectionId } });
      return { redirectTo: url.href };
    },

    /**
     * The interaction a callback belongs to: its `state` must be one Latchkey sent, through this very connection
     * (mix-up defence: a response meant for another connection's callback is refused).
     */
    async locate(connectionId: string, state: string | null, ip: string): Promise<{ uid: string } | Failure> {
      const found = state ? await payloads.find(pendingModel, stateKey(state), now()) : undefined;
      const pending = found?.payload as Pending | undefined;
      if (!pending || pending.connectionId !== connectionId || found!.consumedAt !== null) {
        return refuse({ uid: '', clientId: null, ip }, { failure: 'state_mismatch' }, { connection: connectionId, callback: true });
      }
      return { uid: pending.uid };
    },

    /** Whether this interaction already went to an upstream once (then `connection=ID` no longer skips the page). */
    async hasStarted(uid: string): Promise<boolean> {
      return (await payloads.findByUid(pendingModel, uid, now())) !== undefined;
    },

    /** The callback reached a browser whose interaction has ended or that never had it. */
    expired(attempt: Attempt): Failure {
      return refuse(attempt, { failure: 'interaction_expired' });
    },

    /**
     * Finishes the flow for the interaction of this browser (`attempt.uid`, from oidc-provider's interaction cookie):
     * the state must be the one stored for it, once; then the code exchange and the linking policy.
     */
    async complete(callbackQuery: URLSearchParams, attempt: Attempt): Promise<{ user: User; connection: StoredConnection } | Failure> {
      const state = callbackQuery.get('state') ?? '';
      const key = stateKey(state);
      const found = state ? await payloads.find(pendingModel, key, now()) : undefined;
      const pending = found?.payload as Pending | undefined;
      if (!pending || pending.uid !== attempt.uid || !sameText(pending.state, state)) {
        return refuse(attempt, { failure: 'state_mismatch' });
      }
      // Single use: of two requests with one callback, one goes on.
      if (!(await payloads.consume(pendingModel, key, now())).won) return refuse(attempt, { failure: 'state_mismatch' }, { replay: true });
      const connection = await connections.find(pending.connectionId);
      if (!connection) return refuse(attempt, { failure: 'unknown_connection' }, { connection: pending.connectionId, deletedMidFlow: true });
      let profile: UpstreamProfile;
      try {
        const configuration = await upstreams.configurationFor(connection);
        const currentUrl = new URL(`${callbackUri(deps.issuer, connection.id)}?${callbackQuery}`);
        const tokens = await oidc.authorizationCodeGrant(configuration, currentUrl, {
          pkceCodeVerifier: pending.codeVerifier, expectedState: pending.state, expectedNonce: pending.nonce, idTokenExpected: true,
        });
        const claims = tokens.claims()!;
        const useUserinfo = connection.useUserinfo && configuration.serverMetadata().userinfo_endpoint && tokens.access_token;
        const userinfo = useUserinfo ? await oidc.fetchUserInfo(configuration, tokens.access_token, claims.sub) : undefined;
        profile = profileOf(claims, userinfo);
      } catch (error) {
        const { message, code } = error as { message?: string; code?: string };
        return refuse(attempt, { failure: failureOf(error), connection }, { error: message, code });
      }
      const user = await provisioning.localUser(connection, profile, attempt);
      if ('failure' in user) return user;
      record(attempt, { type: 'federation.sign_in', accountId: user.id, email: user.email, details: { connection: connection.id, subject: profile.subject } });
      return { user, connection };
    },
  };
}

export type FederatedSignIn = ReturnType<typeof createFederatedSignIn>;
