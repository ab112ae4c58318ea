import { createHash, randomBytes } from 'node:crypto';
import type { AccountToken, AccountTokenStore, TokenPurpose } from '../store/account-tokens.js';
import type { Transaction } from '../store/transactions.js';
import type { User } from '../store/users.js';

/** 256 bits from the CSPRNG, base64url: 43 characters. */
const tokenShape = /^[A-Za-z0-9_-]{43}$/;

/** Only this is stored: whoever reads the database (or a backup) cannot use a link that is still valid. */
const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

export type AccountLinks = ReturnType<typeof createAccountLinks>;

/**
 * The single-use links Latchkey mails (reset, invitation, verification): a 256-bit random token in the URL, its
 * SHA-256 in `account_tokens`, a lifetime, and one use. A new link of a purpose replaces the user's unused ones.
 */
export function createAccountLinks(deps: { tokens: AccountTokenStore; now: () => number }) {
  const { tokens, now } = deps;
  return {
    /** A new link's token for `user` (for its current address), valid `ttlSeconds`, stored in `trx`. */
    async issue(purpose: TokenPurpose, user: User, ttlSeconds: number, trx: Transaction): Promise<string> {
      const token = randomBytes(32).toString('base64url');
      const createdAt = now();
      await tokens.replace(hashOf(token), { purpose, userId: user.id, email: user.email, createdAt, expiresAt: createdAt + ttlSeconds * 1000 }, trx);
      return token;
    },

    /** The link's record if it is unused and unexpired; does not use it. */
    async find(token: unknown, purpose: TokenPurpose): Promise<AccountToken | undefined> {
      if (typeof token !== 'string' || !tokenShape.test(token)) return undefined;
      return tokens.findValid(hashOf(token), purpose, now());
    },

    /** Uses the link up (atomically: of two requests with it, one wins); undefined when it was not valid. */
    async consume(token: unknown, purpose: TokenPurpose, trx?: Transaction): Promise<AccountToken | undefined> {
      if (typeof token !== 'string' || !tokenShape.test(token)) return undefined;
      return tokens.consume(hashOf(token), purpose, now(), trx);
    },
  };
}
