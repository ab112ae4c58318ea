import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import Router from '@koa/router';
import { answerWithEtag, etagOf } from '../conditional-get.js';

// @simplewebauthn/browser's own UMD bundle (it defines `SimpleWebAuthnBrowser`), read from node_modules as
// installed: no CDN, and the version served is the version the server was tested with.
const browserPackageEntry = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
const scripts = {
  '/assets/simplewebauthn-browser.js': fs.readFileSync(path.join(path.dirname(browserPackageEntry), '..', 'dist', 'bundle', 'index.umd.min.js')),
  '/assets/passkeys.js': fs.readFileSync(new URL('../../public/passkeys.js', import.meta.url)),
};

/**
 * The two scripts of the passkey pages, from Latchkey's own origin (the CSP allows `script-src 'self'` and nothing
 * inline): the WebAuthn library and public/passkeys.js, which runs the ceremonies. Cached for an hour, with ETags.
 */
export function createPasskeyAssetRoutes() {
  const router = new Router();
  for (const [route, body] of Object.entries(scripts)) {
    const etag = etagOf(body);
    router.get(route, (ctx) => {
      ctx.set('Cache-Control', 'public, max-age=3600');
      ctx.type = 'text/javascript; charset=utf-8';
      answerWithEtag(ctx, etag, body);
    });
  }
  return router.routes();
}
