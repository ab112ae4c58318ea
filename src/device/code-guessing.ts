import { createHash } from 'node:crypto';
import type { Context, Next } from 'koa';
import { isDatabaseUnavailable } from '../database.js';
import type { CounterStore } from '../store/counters.js';
import { answerUnavailable } from '../unavailable.js';
import type { Views } from '../views.js';
import { renderDeviceResult } from './pages.js';

const minuteMs = 60_000;

/**
 * RFC 8628 §5.1: a user code is short enough to type, so guessing one must be slow. Every code submitted on the
 * device page (POST /device: the lookup, the confirmation and the cancel all look the code up) reserves a place in
 * its IP's counter before oidc-provider looks it up, in the database every instance shares; a code that was found
 * gives its place back, so only wrong guesses count. Over `maxPerMinute`, the answer is 429 with Retry-After and no
 * lookup happens.
 */
export function limitCodeGuessing(deps: { counters: CounterStore; maxPerMinute: number; views: Views; now: () => number }) {
  const { counters, maxPerMinute, views, now } = deps;
  return async (ctx: Context, next: Next) => {
    if (ctx.method !== 'POST' || ctx.path !== '/device') return next();
    const at = now();
    const key = `device-codes:${createHash('sha256').update(`ip\n${ctx.ip}`).digest('base64url')}`;
    let reservation;
    try {
      reservation = await counters.reserve(key, { limit: maxPerMinute, windowMs: minuteMs }, at);
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      return answerUnavailable(ctx, views, 'html');
    }
    if (!reservation.isWithin) {
      const seconds = Math.max(1, Math.ceil((reservation.endsAt - at) / 1000));
      ctx.status = 429;
      ctx.set('Retry-After', String(seconds));
      renderDeviceResult(ctx, views, {
        outcome: 'throttled',
        heading: 'device.throttled.heading',
        message: { key: 'device.throttled.message', params: { seconds } },
        again: true,
      });
      return;
    }
    await next();
    // oidc-provider holds the device code once the user code matched one that can still be used.
    const found = (ctx as Context & { oidc?: { entities?: { DeviceCode?: unknown } } }).oidc?.entities?.DeviceCode;
    if (found) await counters.refund([key], now());
  };
}
