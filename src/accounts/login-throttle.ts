import { createHash } from 'node:crypto';
import type { LoginThrottleSettings } from '../config.js';
import type { CounterRule, CounterStore, Reservation } from '../store/counters.js';
import { normalizeEmail } from './email.js';

/** Which counter stopped the attempt. */
export type LockScope = 'pair' | 'ip' | 'ip-attempts' | 'account' | 'account-attempts';
export type Lock = { scope: LockScope; retryAfterSeconds: number };

/** A sign-in attempt the throttle let through; its outcome is reported once the password has been checked. */
export type Attempt = {
  /** The password matched: the pair's failures are forgotten and the other failure counters get their place back. */
  succeeded(): Promise<void>;
  /** The password did not match; returns the lock this failure completed, if any, so the page can say so at once. */
  failed(): Promise<Lock | undefined>;
  /** The password could not be checked (hashing was busy): every place the attempt took is given back. */
  abandoned(): Promise<void>;
};

const minuteMs = 60_000;
const hourMs = 3_600_000;
const dayMs = 86_400_000;

// Counter keys are hashes: the table holds no email addresses, and an over-long email still makes a short key.
const keyOf = (...parts: string[]) => createHash('sha256').update(parts.join('\n')).digest('base64url');

const toLock = (scope: LockScope, endsAt: number, now: number): Lock => ({ scope, retryAfterSeconds: Math.max(1, Math.ceil((endsAt - now) / 1000)) });

/** The lock that lasts longest, if any. */
function longest(locks: Array<Lock | undefined>): Lock | undefined {
  return locks.reduce<Lock | undefined>((found, lock) => (lock && (!found || lock.retryAfterSeconds > found.retryAfterSeconds) ? lock : found), undefined);
}

type Counter = { scope: LockScope; key: string; rule: CounterRule; isFailureCount: boolean };
type Taken = { counter: Counter; reservation: Reservation & { isWithin: true } };

/**
 * The login throttle (OWASP Authentication Cheat Sheet, NIST SP 800-63B §5.2.2). Every attempt RESERVES its place
 * in each counter before the password is checked, in the database every instance shares, so guesses sent at once
 * are counted like guesses sent one by one; a success gives the failure counters their place back. The counters,
 * in the order they are reserved:
 * - account + IP ("pair"), hardest: `pairMaxFailures` failures (remembered for a day), then the pair is locked for
 *   `lockSeconds`; after each lock one more attempt, and every failure doubles the lock (up to `lockMaxSeconds`).
 *   A successful sign-in forgets the pair.
 * - IP: `ipMaxFailuresPerDay` failures over all accounts (password spraying), `ipMaxAttemptsPerMinute` attempts.
 * - account: `accountMaxFailuresPerHour` failures from all IPs, `accountMaxAttemptsPerMinute` attempts.
 * An attempt that one counter refuses never reaches the counters after it, and gives back the places it took
 * before, so one IP reaches the account's counters only as fast as its pair allows (and its own IP counters before
 * the ones it shares with the account's owner): locking someone else out of their account takes many addresses. The attempt limits count successes too, bounding the hashing anyone can
 * cause. Unknown emails count like known ones, so the throttle tells nothing about which accounts exist.
 */
export function createLoginThrottle(deps: { counters: CounterStore; settings: LoginThrottleSettings; now: () => number }) {
  const { counters, settings, now } = deps;

  /** The k-th lock of a pair (k = 0 first): lockSeconds, doubled each time, at most lockMaxSeconds. */
  const lockMs = (level: number) => Math.min(settings.lockSeconds * 2 ** Math.min(level, 30), settings.lockMaxSeconds) * 1000;
  /**
   * The pair's rule at each lock level, up to the first at the longest lock (which applies to every level above):
   * no lock yet, pairMaxFailures failures in a day; after k locks, one attempt per lockMs(k), whose failure locks.
   */
  const pairRules: CounterRule[] = [{ limit: settings.pairMaxFailures, windowMs: dayMs, lockMs: lockMs(0) }];
  for (let level = 1; level <= 31; level += 1) {
    pairRules.push({ limit: 1, windowMs: lockMs(level), lockMs: lockMs(level) });
    if (lockMs(level) >= settings.lockMaxSeconds * 1000) break;
  }

  function keys(email: string, ip: string) {
    const account = keyOf('account', normalizeEmail(email));
    const pair = keyOf('pair', account, ip);
    return {
      pair: `pair:${pair}`,
      pairLocks: `pair-locks:${pair}`,
      ip: `ip:${keyOf('ip', ip)}`,
      ipAttempts: `ip-attempts:${keyOf('ip', ip)}`,
      account: `account:${account}`,
      accountAttempts: `account-attempts:${account}`,
    };
  }

  /**
   * Reserves the counters of one stage at once; if any refuses, gives back what this attempt took so far (this
   * stage and the earlier ones) and returns the lock.
   */
  async function reserveStage(stage: Counter[], taken: Taken[], at: number): Promise<Lock | undefined> {
    const results = await Promise.all(stage.map(async (counter) => ({ counter, reservation: await counters.reserve(counter.key, counter.rule, at) })));
    const granted = results.filter((result): result is Taken => result.reservation.isWithin);
    taken.push(...granted);
    if (granted.length === results.length) return undefined;
    await counters.refund(taken.map(({ counter }) => counter.key), at);
    return longest(results.filter((result) => !result.reservation.isWithin).map(({ counter, reservation }) => toLock(counter.scope, reservation.endsAt, at)));
  }

  return {
    /** Takes this attempt's place in every counter, or returns the lock that refuses it; before any password check. */
    async reserve(email: string, ip: string): Promise<{ attempt: Attempt } | { lock: Lock }> {
      const key = keys(email, ip);
      const at = now();
      // How many locks the pair has had today picks its rule; it is read in the same statement as the pair's
      // reservation, while the window's count itself stays atomic (attempts racing a level change may get the
      // previous, shorter lock length, never an extra attempt).
      const pair = await counters.reserveByLevel(key.pair, key.pairLocks, pairRules, at);
      if (!pair.isWithin) return { lock: toLock('pair', pair.endsAt, at) };
      const pairCounter: Counter = { scope: 'pair', key: key.pair, rule: pairRules[Math.min(pair.level, pairRules.length - 1)], isFailureCount: true };
      const stages: Counter[][] = [
        [
          { scope: 'ip', key: key.ip, rule: { limit: settings.ipMaxFailuresPerDay, windowMs: dayMs }, isFailureCount: true },
          { scope: 'ip-attempts', key: key.ipAttempts, rule: { limit: settings.ipMaxAttemptsPerMinute, windowMs: minuteMs }, isFailureCount: false },
        ],
        [
          { scope: 'account', key: key.account, rule: { limit: settings.accountMaxFailuresPerHour, windowMs: hourMs }, isFailureCount: true },
          { scope: 'account-attempts', key: key.accountAttempts, rule: { limit: settings.accountMaxAttemptsPerMinute, windowMs: minuteMs }, isFailureCount: false },
        ],
      ];
      const taken: Taken[] = [{ counter: pairCounter, reservation: pair }];
      for (const stage of stages) {
        const lock = await reserveStage(stage, taken, at);
        if (lock) return { lock };
      }
      // The reservations that filled their counter: the next attempt will be refused.
      const filled = taken.filter(({ counter, reservation }) => reservation.points >= counter.rule.limit);

      return {
        attempt: {
          async succeeded() {
            const refunds = taken.filter(({ counter }) => counter.isFailureCount && counter.scope !== 'pair');
            await Promise.all([
              counters.clear([key.pair, key.pairLocks]),
              counters.refund(refunds.map(({ counter }) => counter.key), now()),
            ]);
          },
          async failed() {
            // The failure that filled the pair's window starts its next, longer lock level.
            if (filled.some(({ counter }) => counter.scope === 'pair')) {
              await counters.increment(key.pairLocks, dayMs, now());
            }
            const failedAt = now();
            return longest(filled.map(({ counter, reservation }) => toLock(counter.scope, reservation.endsAt, failedAt)));
          },
          async abandoned() {
            await counters.refund(taken.map(({ counter }) => counter.key), now());
          },
        },
      };
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
