import { createHash } from 'node:crypto';
import type { LoginThrottleSettings } from '../config.js';
import type { LimiterFactory } from '../store/login-throttle.js';
import { normalizeEmail } from './accounts.js';

/** Which counter stopped the attempt: this account from this IP, the account from everywhere, or this IP. */
export type LockScope = 'pair' | 'account' | 'ip';
export type Lock = { scope: LockScope; retryAfterSeconds: number };

const hourSeconds = 3600;
const daySeconds = 86400;

// Counter keys are hashes: the table holds no email addresses, and an over-long email still makes a short key.
const keyOf = (...parts: string[]) => createHash('sha256').update(parts.join('\n')).digest('base64url');

/**
 * The login throttle (OWASP Authentication Cheat Sheet, NIST SP 800-63B §5.2.2), counting failed sign-ins only:
 * - account + IP, hardest: after `pairMaxFailures` failures the pair locks for `lockSeconds`, and every further
 *   failure locks it again for twice as long (up to `lockMaxSeconds`). Failures are remembered for a day; a
 *   successful sign-in forgets them.
 * - account alone, gently: `accountMaxFailuresPerHour` from all IPs together. One IP, held back by its pair lock,
 *   cannot reach it alone, so locking a victim out takes many addresses, and only for the rest of the hour.
 * - IP alone: `ipMaxFailuresPerDay` over all accounts, against one address spraying passwords across many accounts.
 * Unknown emails count like known ones, so the throttle tells nothing about which accounts exist.
 */
export function createLoginThrottle(createLimiter: LimiterFactory, settings: LoginThrottleSettings) {
  const pairFailures = createLimiter({ keyPrefix: 'pair', points: settings.pairMaxFailures, durationSeconds: daySeconds });
  const pairLocks = createLimiter({ keyPrefix: 'pair-lock', points: 1, durationSeconds: settings.lockMaxSeconds });
  const accountFailures = createLimiter({ keyPrefix: 'account', points: settings.accountMaxFailuresPerHour, durationSeconds: hourSeconds });
  const ipFailures = createLimiter({ keyPrefix: 'ip', points: settings.ipMaxFailuresPerDay, durationSeconds: daySeconds });

  const keys = (email: string, ip: string) => {
    const account = keyOf('account', normalizeEmail(email));
    return { pair: keyOf('pair', account, ip), account, ip: keyOf('ip', ip) };
  };

  /** The lock that lasts longest, if any counter is at its limit. */
  function longest(candidates: Array<Lock | undefined>): Lock | undefined {
    return candidates.reduce<Lock | undefined>((found, lock) => (lock && (!found || lock.retryAfterSeconds > found.retryAfterSeconds) ? lock : found), undefined);
  }

  const toLock = (scope: LockScope, msBeforeNext: number): Lock => ({ scope, retryAfterSeconds: Math.max(1, Math.ceil(msBeforeNext / 1000)) });

  /** The lock in force at the limits, or undefined. `consumed` counts the failures recorded in the window. */
  function atLimit(scope: LockScope, limit: number, result: { consumedPoints: number; msBeforeNext: number } | null) {
    return result && result.consumedPoints >= limit && result.msBeforeNext > 0 ? toLock(scope, result.msBeforeNext) : undefined;
  }

  return {
    /** Whether this email may try a password from this IP now; checked before any password is verified. */
    async check(email: string, ip: string): Promise<Lock | undefined> {
      const key = keys(email, ip);
      const [pairLock, account, address] = await Promise.all([pairLocks.get(key.pair), accountFailures.get(key.account), ipFailures.get(key.ip)]);
      return longest([
        atLimit('pair', 1, pairLock),
        atLimit('account', settings.accountMaxFailuresPerHour, account),
        atLimit('ip', settings.ipMaxFailuresPerDay, address),
      ]);
    },

    /** Counts a failed sign-in; returns the lock it triggered, if any, so the page can say so at once. */
    async recordFailure(email: string, ip: string): Promise<Lock | undefined> {
      const key = keys(email, ip);
      const [pair, account, address] = await Promise.all([pairFailures.penalty(key.pair), accountFailures.penalty(key.account), ipFailures.penalty(key.ip)]);
      let pairLock: Lock | undefined;
      const beyond = pair.consumedPoints - settings.pairMaxFailures;
      if (beyond >= 0) {
        const seconds = Math.min(settings.lockSeconds * 2 ** Math.min(beyond, 30), settings.lockMaxSeconds);
        await pairLocks.block(key.pair, seconds);
        pairLock = { scope: 'pair', retryAfterSeconds: seconds };
      }
      return longest([
        pairLock,
        atLimit('account', settings.accountMaxFailuresPerHour, account),
        atLimit('ip', settings.ipMaxFailuresPerDay, address),
      ]);
    },

    /** A successful sign-in clears the pair's failures and lock (the account and IP counters keep counting). */
    async recordSuccess(email: string, ip: string): Promise<void> {
      const key = keys(email, ip);
      await Promise.all([pairFailures.delete(key.pair), pairLocks.delete(key.pair)]);
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
