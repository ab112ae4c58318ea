import { createHash } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { CounterStore } from '../store/counters.js';

/**
 * The device's side of RFC 8628: the device authorization response tells the polling interval (§3.2 `interval`),
 * and a device that polls the token endpoint faster than that while the user has not finished gets `slow_down`
 * instead of `authorization_pending` (§3.5). oidc-provider answers everything else itself (`authorization_pending`,
 * `expired_token`, `access_denied`); this only sees the answer it gave. The last poll of each device code is a
 * counter of one place per interval in the shared database, so the rule holds across instances.
 */
export function enforcePollingInterval(deps: { counters: CounterStore; intervalSeconds: number; now: () => number }) {
  const { counters, intervalSeconds, now } = deps;
  return async (ctx: Context, next: Next) => {
    if (ctx.method !== 'POST' || (ctx.path !== '/device/auth' && ctx.path !== '/token')) return next();
    await next();
    const body = ctx.body as Record<string, unknown> | undefined;
    if (ctx.path === '/device/auth') {
      if (ctx.status === 200 && typeof body?.device_code === 'string') body.interval = intervalSeconds;
      return;
    }
    if (ctx.status !== 400 || body?.error !== 'authorization_pending') return;
    const deviceCode = (ctx as Context & { oidc?: { params?: { device_code?: unknown } } }).oidc?.params?.device_code;
    if (typeof deviceCode !== 'string') return;
    const key = `device-poll:${createHash('sha256').update(deviceCode).digest('base64url')}`;
    const poll = await counters.reserve(key, { limit: 1, windowMs: intervalSeconds * 1000 }, now());
    if (!poll.isWithin) {
      ctx.body = { error: 'slow_down', error_description: `the device polled sooner than ${intervalSeconds} seconds after its last poll` };
    }
  };
}
