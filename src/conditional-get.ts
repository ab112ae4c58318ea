import { createHash } from 'node:crypto';
import type { Context } from 'koa';

/** A strong validator (RFC 9110 §8.8.3) for a body that never changes once served: 132 bits of its SHA-256. */
export function etagOf(body: string | Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
}

/**
 * Answers a GET or HEAD for a fixed body with its ETag: 304 Not Modified when If-None-Match already names it
 * (RFC 9110 §13.1.2), else 200 with the body. The caller sets Content-Type and Cache-Control first.
 */
export function answerWithEtag(ctx: Context, etag: string, body: string | Buffer) {
  ctx.etag = etag;
  ctx.status = 200; // ctx.fresh compares validators only for a 2xx response
  if (ctx.fresh) {
    ctx.status = 304;
    return;
  }
  ctx.body = body;
}
