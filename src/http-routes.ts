import { createHash } from 'node:crypto';
import fs from 'node:fs';
import Router from '@koa/router';

const stylesheet = fs.readFileSync(new URL('../public/latchkey.css', import.meta.url));
const stylesheetEtag = `"${createHash('sha256').update(stylesheet).digest('base64url').slice(0, 16)}"`;

/**
 * Latchkey's own non-protocol routes: the health check, the one stylesheet of the hosted pages and an empty favicon.
 * `isDatabaseReachable` answers whether the database responds now.
 */
export function createHttpRoutes(deps: { isDatabaseReachable: () => Promise<boolean> }) {
  const router = new Router();

  router.get('/healthz', async (ctx) => {
    const isReachable = await deps.isDatabaseReachable();
    ctx.set('Cache-Control', 'no-store');
    ctx.status = isReachable ? 200 : 503;
    ctx.body = { status: isReachable ? 'ok' : 'database unreachable' };
  });

  router.get('/assets/latchkey.css', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.etag = stylesheetEtag;
    ctx.type = 'text/css';
    ctx.status = 200; // ctx.fresh compares validators only for a 2xx response
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    ctx.body = stylesheet;
  });

  // Browsers ask every origin for a favicon; Latchkey has none, and a 404 shows up as an error in the console.
  router.get('/favicon.ico', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.status = 204;
  });

  return router.routes();
}
