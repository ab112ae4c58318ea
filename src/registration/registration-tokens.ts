import { createHash, randomBytes } from 'node:crypto';
import type { RegistrationTokenStore } from '../store/registration-tokens.js';
import { UserFacingError } from '../user-facing-error.js';

const digestOf = (token: string) => createHash('sha256').update(token).digest('base64url');

export type RegistrationTokens = ReturnType<typeof createRegistrationTokens>;

/**
 * Initial access tokens (RFC 7591 §3): with CLIENT_REGISTRATION=token, registering a client takes one. Each is
 * 256 random bits, printed once and stored only as its digest, good for `uses` registrations until it expires.
 */
export function createRegistrationTokens(deps: { tokens: RegistrationTokenStore; now?: () => number }) {
  const now = deps.now ?? Date.now;
  return {
    async create(options: { expiresInSeconds: number; uses: number }): Promise<{ token: string; expiresAt: number }> {
      if (!Number.isInteger(options.uses) || options.uses < 1 || options.uses > 10_000) {
        throw new UserFacingError('a registration token is good for 1 to 10000 registrations');
      }
      if (options.expiresInSeconds < 60 || options.expiresInSeconds > 90 * 86400) {
        throw new UserFacingError('a registration token expires after 1 minute to 90 days');
      }
      const token = randomBytes(32).toString('base64url');
      const expiresAt = now() + options.expiresInSeconds * 1000;
      await deps.tokens.insert({ digest: digestOf(token), uses: options.uses, expiresAt, createdAt: now() });
      return { token, expiresAt };
    },
    /** Takes a use of `token`; false when it is unknown, expired or used up. */
    use: (token: string) => deps.tokens.use(digestOf(token), now()),
    refund: (token: string) => deps.tokens.refund(digestOf(token)),
  };
}
