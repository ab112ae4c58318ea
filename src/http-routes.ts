import fs from 'node:fs';
import Router from '@koa/router';
import { answerWithEtag, etagOf } from './conditional-get.js';

const stylesheet = fs.readFileSync(new URL('../public/latchkey.css', import.meta.url));
const stylesheetEtag = etagOf(stylesheet);

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
    ctx.type = 'text/css';
    answerWithEtag(ctx, stylesheetEtag, stylesheet);
  });

  // Browsers ask every origin for a favicon; Latchkey has none, and a 404 shows up as an error in the console.
  router.get('/favicon.ico', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.status = 204;
  });

  return router.routes();
}
