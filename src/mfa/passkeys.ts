import { createHash, randomUUID } from 'node:crypto';
import type {
  AuthenticationResponseJSON, AuthenticatorTransportFuture, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { isStorableText } from '../database.js';
import type { PasskeyStore, StoredPasskey } from '../store/passkeys.js';
import type { User } from '../store/users.js';
import type { RelyingParty } from './relying-party.js';

/**
 * RFC 8176 `amr` of a passkey. `hwk` and `swk` promise hardware- or software-held keys, and with `none` attestation
 * (and synced passkeys) Latchkey cannot know which; `pop` (IANA AMR registry: proof of possession of a key, storage
 * unspecified) is what is known. See docs/mfa.md, "Claims".
 */
export const passkeyAmr = 'pop';

/** The longest name a person may give a passkey. */
export const passkeyLabelMaxLength = 60;

/**
 * What a passkey ceremony is for; each has its own challenge, bound to one interaction or one session: adding a
 * passkey on /account/security (`enrol`, the Latchkey session) or inside a sign-in (`enrol-in-sign-in`, the
 * interaction), signing in with one alone (`sign-in`) or after the password (`second-factor`).
 */
export type Ceremony = 'sign-in' | 'second-factor' | 'enrol' | 'enrol-in-sign-in';
type Enrolment = Extract<Ceremony, 'enrol' | 'enrol-in-sign-in'>;

export type PasskeyAssertion = { passkey: StoredPasskey; isCounterRegressed: boolean; isUserVerified: boolean };

/**
 * The WebAuthn library, imported by the first passkey ceremony rather than at start-up: its helpers alone hold about
 * 10 MB of a server's memory and take a good part of its start-up, and most servers never see a passkey. Node keeps
 * the module once imported; an import that failed fails that request (a 500, logged) and is tried again by the next.
 */
async function webAuthn() {
  const [server, helpers] = await Promise.all([import('@simplewebauthn/server'), import('@simplewebauthn/server/helpers')]);
  return { ...server, decodeClientDataJSON: helpers.decodeClientDataJSON, isoBase64URL: helpers.isoBase64URL };
}

const hashOf = (challenge: string) => createHash('sha256').update(challenge).digest('hex');
const bindingOf = (ceremony: Ceremony, boundTo: string) => `${ceremony}:${boundTo}`;

/** A readable name for a passkey: trimmed, one line, at most passkeyLabelMaxLength characters; default "Passkey". */
export function passkeyLabel(typed: string | undefined): string {
  const label = (typed ?? '').replace(/[\u0000-\u001f\u007f]/g, ' ').trim().slice(0, passkeyLabelMaxLength);
  return label || 'Passkey';
}

/** The browser's answer (a JSON form field) as an object, or undefined when it is not one. */
function readJson<T>(text: string | undefined): T | undefined {
  if (!text || !isStorableText(text)) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed as T : undefined;
  } catch {
    return undefined;
  }
}

export type Passkeys = ReturnType<typeof createPasskeys>;

/**
 * WebAuthn for one relying party (the issuer): options with a fresh challenge, and the checks of the answers.
 * Every challenge is single-use and bound to its ceremony and to an interaction (signing in, enrolling inside a
 * sign-in) or the Latchkey session (enrolling on the account page): it is consumed (one DELETE) before the answer is verified, so a replay or an answer carried to another interaction
 * finds nothing. Origin and RP ID must be the issuer's; counters that go backwards are reported, not refused
 * (synced passkeys share one key across devices). Time is passed in (`now`, epoch ms).
 */
export function createPasskeys(deps: { store: PasskeyStore; rp: RelyingParty; challengeTtlSeconds: number; now: () => number }) {
  const { store, rp, now } = deps;
  const timeout = deps.challengeTtlSeconds * 1000;

  async function remember(ceremony: Ceremony, boundTo: string, challenge: string) {
    const at = now();
    await store.putChallenge(bindingOf(ceremony, boundTo), hashOf(challenge), at + timeout, at);
  }

  /** Uses up the challenge the answer carries, if it is the outstanding one of this ceremony and binding. */
  async function consume(ceremony: Ceremony, boundTo: string, clientDataJSON: unknown): Promise<string | undefined> {
    if (typeof clientDataJSON !== 'string') return undefined;
    const { decodeClientDataJSON } = await webAuthn();
    let challenge: string;
    try {
      challenge = decodeClientDataJSON(clientDataJSON).challenge;
    } catch {
      return undefined;
    }
    if (typeof challenge !== 'string' || !(await store.consumeChallenge(bindingOf(ceremony, boundTo), hashOf(challenge), now()))) return undefined;
    return challenge;
  }

  return {
    rp,

    /** Options to create a passkey for `user` (discoverable, user verification required), bound to `boundTo`. */
    async registrationOptions(ceremony: Enrolment, boundTo: string, user: User): Promise<PublicKeyCredentialCreationOptionsJSON> {
      const { generateRegistrationOptions } = await webAuthn();
      const existing = await store.listByAccount(user.id);
      const options = await generateRegistrationOptions({
        rpName: rp.name, rpID: rp.id, userName: user.email, userDisplayName: user.email, userID: new TextEncoder().encode(user.id),
        timeout, attestationType: 'none',
        excludeCredentials: existing.map((passkey) => ({ id: passkey.credentialId, transports: passkey.transports as AuthenticatorTransportFuture[] })),
        authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      });
      await remember(ceremony, boundTo, options.challenge);
      return options;
    },

    /**
     * Checks the browser's answer to registrationOptions and stores the passkey. Undefined when the answer is not
     * valid for the outstanding challenge of this ceremony and binding; 'duplicate' when the credential is
     * registered already.
     */
    async register(ceremony: Enrolment, boundTo: string, user: User, answer: string | undefined, label: string): Promise<StoredPasskey | 'duplicate' | undefined> {
      const response = readJson<RegistrationResponseJSON>(answer);
      const challenge = await consume(ceremony, boundTo, response?.response?.clientDataJSON);
      if (!response || !challenge) return undefined;
      const { verifyRegistrationResponse, isoBase64URL } = await webAuthn();
      let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
      try {
        verified = await verifyRegistrationResponse({
          response, expectedChallenge: challenge, expectedOrigin: rp.origin, expectedRPID: rp.id, requireUserVerification: true,
        });
      } catch {
        return undefined;
      }
      if (!verified.verified || !verified.registrationInfo) return undefined;
      const { credential } = verified.registrationInfo;
      if (await store.findByCredentialId(credential.id)) return 'duplicate';
      const passkey: StoredPasskey = {
        id: randomUUID(), accountId: user.id, label, credentialId: credential.id, publicKey: isoBase64URL.fromBuffer(credential.publicKey),
        signCount: credential.counter, transports: credential.transports ?? [], lastUsedAt: null, createdAt: now(),
      };
      return (await store.insert(passkey)) ? passkey : 'duplicate';
    },

    /**
     * Options to sign in: for passkey-first (`accountId` absent) any discoverable passkey of this site, with user
     * verification required; as a second factor, the account's own passkeys, user verification preferred.
     */
    async authenticationOptions(ceremony: 'sign-in' | 'second-factor', interactionUid: string, accountId?: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
      const { generateAuthenticationOptions } = await webAuthn();
      const allowCredentials = accountId
        ? (await store.listByAccount(accountId)).map((passkey) => ({ id: passkey.credentialId, transports: passkey.transports as AuthenticatorTransportFuture[] }))
        : [];
      const options = await generateAuthenticationOptions({
        rpID: rp.id, timeout, allowCredentials, userVerification: ceremony === 'sign-in' ? 'required' : 'preferred',
      });
      await remember(ceremony, interactionUid, options.challenge);
      return options;
    },

    /**
     * Checks an assertion for the outstanding challenge of this ceremony and interaction. Passkey-first requires
     * user verification and a user handle naming the passkey's owner (WebAuthn §7.2 step 6); as a second factor the
     * passkey must belong to `accountId`. Records the use; a counter that did not go up is reported to the caller.
     */
    async authenticate(ceremony: 'sign-in' | 'second-factor', interactionUid: string, answer: string | undefined, accountId?: string): Promise<PasskeyAssertion | undefined> {
      const response = readJson<AuthenticationResponseJSON>(answer);
      const challenge = await consume(ceremony, interactionUid, response?.response?.clientDataJSON);
      if (!response || !challenge || typeof response.id !== 'string') return undefined;
      const { verifyAuthenticationResponse, isoBase64URL } = await webAuthn();
      const passkey = await store.findByCredentialId(response.id);
      if (!passkey || (accountId !== undefined && passkey.accountId !== accountId)) return undefined;
      if (ceremony === 'sign-in' && response.response.userHandle !== isoBase64URL.fromUTF8String(passkey.accountId)) return undefined;
      let verified: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
      try {
        verified = await verifyAuthenticationResponse({
          response, expectedChallenge: challenge, expectedOrigin: rp.origin, expectedRPID: rp.id,
          requireUserVerification: ceremony === 'sign-in',
          // The counter is compared here rather than by the library, which would refuse a regression outright.
          credential: { id: passkey.credentialId, publicKey: isoBase64URL.toBuffer(passkey.publicKey), counter: 0 },
        });
      } catch {
        return undefined;
      }
      if (!verified.verified) return undefined;
      const { newCounter, userVerified } = verified.authenticationInfo;
      const isCounterRegressed = (newCounter > 0 || passkey.signCount > 0) && newCounter <= passkey.signCount;
      await store.recordUse(passkey.id, newCounter, now());
      return { passkey, isCounterRegressed, isUserVerified: userVerified };
    },

    list: (accountId: string) => store.listByAccount(accountId),
    rename: (accountId: string, id: string, label: string) => store.rename(accountId, id, label),
    remove: (accountId: string, id: string) => store.delete(accountId, id),
  };
}
