/**
 * RFC 9449 §11.1: remembers the DPoP proofs an API has accepted, so the same proof sent again (captured on the way,
 * or by a client's bug) is refused. A proof is accepted only while its `iat` is within the window of the API's
 * clock, so it need be remembered only until `iat + window`; after that its `iat` alone refuses it.
 *
 * The memory is bounded: at `maxEntries` proofs still inside their window, a new proof is answered 503 rather than
 * forgetting one that could then be replayed (fail closed). Size it to the proofs the API accepts per window. Each
 * process remembers its own proofs: an API with several instances needs a shared store (a database row per proof
 * with a unique key, as Latchkey does), or sticky routing per token.
 */
export type ProofReplayCache = { remember(jkt: string, jti: string, iatSeconds: number, now: number): 'fresh' | 'replayed' | 'full' };

export function createProofReplayCache(options: { maxEntries: number; windowSeconds: number }): ProofReplayCache {
  /** `jkt jti` → when the proof's window ends (epoch ms). The key's thumbprint makes one key's jti not clash with another's. */
  const seen = new Map<string, number>();
  const forgetEnded = (now: number) => {
    for (const [id, endsAt] of seen) if (endsAt < now) seen.delete(id);
  };
  return {
    remember(jkt, jti, iatSeconds, now) {
      const id = `${jkt} ${jti}`;
      const endsAt = seen.get(id);
      if (endsAt !== undefined && endsAt >= now) return 'replayed';
      if (seen.size >= options.maxEntries) forgetEnded(now);
      if (seen.size >= options.maxEntries) return 'full';
      seen.set(id, (iatSeconds + options.windowSeconds) * 1000);
      return 'fresh';
    },
  };
}
