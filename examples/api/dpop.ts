import { createHash } from 'node:crypto';
import { base64url, calculateJwkThumbprint, EmbeddedJWK, errors, jwtVerify } from 'jose';
import type { ProofReplayCache } from './proof-replay.js';

/** RFC 9449 §5.1: the proof algorithms accepted, the ones Latchkey advertises (dpop_signing_alg_values_supported). */
export const dpopAlgorithms = ['ES256', 'Ed25519', 'EdDSA'];

export type ProofCheck = {
  /** The `DPoP` request header as received (Node joins repeated headers with ", "). */
  proof: string | undefined;
  /** The access token the request carries, already verified, and the key thumbprint it is bound to (`cnf.jkt`). */
  accessToken: string;
  jkt: string;
  method: string;
  /** The request's URL as the client addressed it, built from the API's configured public URL (never `Host`). */
  url: URL;
  now: number;
  /** How far `iat` may be from `now`, either way (clocks differ), in seconds. */
  windowSeconds: number;
  /** The proofs accepted before (proof-replay.ts), with the same window. */
  replays: ProofReplayCache;
};

/** What is wrong with a proof (the request is refused 401), or that the replay memory is full (503). */
export type ProofProblem = string | { isFull: true };

/** URIs compared without query and fragment (RFC 9449 §4.3 step 9), after URL's normalisation (case, default port). */
const withoutQuery = (url: URL) => `${url.origin}${url.pathname}`;

/**
 * Checks a DPoP proof for a request carrying a DPoP-bound access token (RFC 9449 §4.3 and §7.1): one well-formed
 * `dpop+jwt`, signed by the public key in its own header with an allowed algorithm, for this method and URI,
 * issued within `windowSeconds` of now, for this access token (`ath`), by the key the token is bound to (`jkt`).
 * Last (only a proof good in every other way is remembered, §11.1), one not seen before. Returns what is wrong,
 * or nothing.
 */
export async function checkDpopProof(check: ProofCheck): Promise<ProofProblem | undefined> {
  if (!check.proof) return 'a DPoP proof is required';
  if (check.proof.includes(',')) return 'exactly one DPoP header is allowed';
  let verified;
  try {
    verified = await jwtVerify(check.proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: dpopAlgorithms,
      // Requires `iat` and accepts it only within the window either side of now (jose adds the tolerance to both).
      maxTokenAge: 0,
      clockTolerance: check.windowSeconds,
      currentDate: new Date(check.now),
    });
  } catch (error) {
    if (error instanceof errors.JOSEError) return 'the DPoP proof is invalid, expired or not signed by its own key';
    throw error;
  }
  const { payload, protectedHeader } = verified;
  if (typeof payload.jti !== 'string' || payload.jti === '') return 'the DPoP proof has no jti';
  if (payload.htm !== check.method) return 'the DPoP proof is for another method';
  if (typeof payload.htu !== 'string' || !URL.canParse(payload.htu) || withoutQuery(new URL(payload.htu)) !== withoutQuery(check.url)) {
    return 'the DPoP proof is for another URI';
  }
  const ath = base64url.encode(createHash('sha256').update(check.accessToken).digest());
  if (payload.ath !== ath) return 'the DPoP proof is for another access token';
  // EmbeddedJWK has checked that the header's jwk is a public key and verified the signature with it.
  if (await calculateJwkThumbprint(protectedHeader.jwk!, 'sha256') !== check.jkt) {
    return 'the DPoP proof is signed by another key than the token is bound to';
  }
  const remembered = check.replays.remember(check.jkt, payload.jti, payload.iat!, check.now);
  if (remembered === 'replayed') return 'the DPoP proof has been used before';
  if (remembered === 'full') return { isFull: true };
  return undefined;
}
