import { createHash } from 'node:crypto';
import { normalizeEmail } from '../accounts/email.js';
import type { CounterStore } from '../store/counters.js';

const hourMs = 3_600_000;

// Counter keys are hashes, like the login throttle's: the counters table holds no addresses.
const keyOf = (...parts: string[]) => createHash('sha256').update(parts.join('\n')).digest('base64url');

export type RequestLimits = ReturnType<typeof createRequestLimits>;

/**
 * Hourly limits on the forms that make Latchkey send mail (forgot password, sign-up, re-send verification), in
 * the counters every instance shares (store/counters.ts, the login throttle's): each request reserves its place
 * before anything is looked up or sent. Unknown addresses count like known ones, so a refusal tells nothing.
 */
export function createRequestLimits(deps: { counters: CounterStore; now: () => number }) {
  const { counters, now } = deps;
  return {
    /**
     * Reserves one request of `kind` for each key (`ip:…`, `address:…`, `account:…`) within `perHour`; returns
     * the seconds until the first refusing counter frees up, or undefined when every one said yes.
     */
    async reserve(kind: string, limits: Array<{ key: string; perHour: number }>): Promise<number | undefined> {
      const at = now();
      for (const { key, perHour } of limits) {
        const reservation = await counters.reserve(`${kind}:${keyOf(kind, key)}`, { limit: perHour, windowMs: hourMs }, at);
        if (!reservation.isWithin) return Math.max(1, Math.ceil((reservation.endsAt - at) / 1000));
      }
      return undefined;
    },
  };
}

export const addressKey = (email: string) => `address:${normalizeEmail(email)}`;
export const ipKey = (ip: string) => `ip:${ip}`;
