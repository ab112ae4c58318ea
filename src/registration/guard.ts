import { createHash } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { ClientRegistrationSettings } from '../config.js';
import type { CounterStore } from '../store/counters.js';
import type { RegistrationTokens } from './registration-tokens.js';

const hourMs = 3_600_000;

function refuse(ctx: Context, status: number, error: string, description: string) {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error, error_description: description };
}

/**
 * In front of oidc-provider's registration endpoint (POST /reg): at most `perIpPerHour` registrations, attempted or
 * not, per client IP and hour (counted in the database every instance shares), so one address cannot fill the
 * clients table; and with CLIENT_REGISTRATION=token, an initial access token (RFC 7591 §3) from
 * `latchkey clients registration-token create`, of which a registration takes one use. A use taken by a
 * registration that is then refused is given back. oidc-provider's own initial access tokens cannot be limited to a
 * number of uses, hence this check instead of them.
 */
export function guardRegistration(deps: {
  settings: ClientRegistrationSettings; counters: CounterStore; tokens: RegistrationTokens; now: () => number;
}) {
  const { settings, counters, tokens, now } = deps;
  return async (ctx: Context, next: Next) => {
    if (ctx.path !== '/reg' || ctx.method !== 'POST' || settings.mode === 'closed') return next();
    const at = now();
    const key = `registrations:${createHash('sha256').update(`ip\n${ctx.ip}`).digest('base64url')}`;
    const reservation = await counters.reserve(key, { limit: settings.perIpPerHour, windowMs: hourMs }, at);
    if (!reservation.isWithin) {
      const seconds = Math.max(1, Math.ceil((reservation.endsAt - at) / 1000));
      ctx.set('Retry-After', String(seconds));
      return refuse(ctx, 429, 'temporarily_unavailable', `Too many client registrations from this address. Try again in ${seconds} seconds.`);
    }
    if (settings.mode === 'open') return next();
    const token = /^Bearer ([A-Za-z0-9_-]{1,100})$/.exec(ctx.get('Authorization'))?.[1];
    if (!token || !(await tokens.use(token))) {
      // RFC 6750 §3.1: the token is missing, unknown, expired or used up; which of them is not said.
      ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      return refuse(ctx, 401, 'invalid_token', 'a valid initial access token is required to register a client');
    }
    try {
      await next();
    } finally {
      if (ctx.status !== 201) await tokens.refund(token);
    }
  };
}
