import { createHash } from 'node:crypto';
import type { Context, Next } from 'koa';
import { isDatabaseUnavailable } from './database.js';
import type { CounterStore } from './store/counters.js';
import { answerUnavailable } from './unavailable.js';
import type { Views } from './views.js';

const minuteMs = 60_000;

/**
 * The requests anyone may send without being signed in and that store something: an authorization request
 * (/auth and its resumption /auth/:uid, PAR at /request for public clients) creates an interaction, a logout
 * request (/session/end …) touches a session, the sign-in forms (POST /interaction/:uid/…) write results, and the
 * device flow (/device/auth, /device and /device/:uid) stores device codes and sessions.
 */
function isStateful(ctx: Context): boolean {
  const { path } = ctx;
  return path === '/auth' || path.startsWith('/auth/') || path === '/request'
    || path === '/session/end' || path.startsWith('/session/end/')
    || (ctx.method === 'POST' && path.startsWith('/interaction/'))
    || path === '/device' || path.startsWith('/device/');
}

/** PAR and device authorization are called by an app or a device, which reads JSON; the others are pages in a browser. */
const wantsJson = (ctx: Context) => ctx.path === '/request' || ctx.path === '/device/auth';

function answerTooMany(ctx: Context, views: Views, retryAfterSeconds: number, error: { error: string; error_description: string }) {
  ctx.status = 429;
  ctx.set('Retry-After', String(retryAfterSeconds));
  ctx.set('Cache-Control', 'no-store');
  if (wantsJson(ctx)) {
    ctx.body = error;
    return;
  }
  ctx.type = 'html';
  ctx.body = views.render('error', { title: 'error.too_many_title', message: { key: 'error.too_many', params: { seconds: retryAfterSeconds } }, code: error.error });
}

/**
 * At most `perMinute` stateful requests (above) per client IP and minute, counted in the database every instance
 * shares: one address cannot fill the tables with interactions and sessions. The place is reserved before the
 * request runs; over the limit the answer is 429 with Retry-After (RFC 6585 §4), an error page or OAuth error JSON,
 * and never a redirect: the redirect_uri has not been checked yet.
 */
export function statefulRequestLimit(deps: { counters: CounterStore; perMinute: number; views: Views; now: () => number }) {
  const { counters, perMinute, views, now } = deps;
  return async (ctx: Context, next: Next) => {
    if (!isStateful(ctx)) return next();
    const at = now();
    const key = `requests:${createHash('sha256').update(`ip\n${ctx.ip}`).digest('base64url')}`;
    let reservation;
    try {
      reservation = await counters.reserve(key, { limit: perMinute, windowMs: minuteMs }, at);
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      return answerUnavailable(ctx, views, wantsJson(ctx) ? 'json' : 'html');
    }
    if (!reservation.isWithin) {
      const seconds = Math.max(1, Math.ceil((reservation.endsAt - at) / 1000));
      // RFC 6749 §4.1.2.1 has no code for "too many"; temporarily_unavailable is the one that says "try later".
      return answerTooMany(ctx, views, seconds, { error: 'temporarily_unavailable', error_description: `Too many requests from this address. Try again in ${seconds} seconds.` });
    }
    return next();
  };
}
