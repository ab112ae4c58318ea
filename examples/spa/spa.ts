import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export type SpaOptions = {
  issuer: string;
  /** A public client registered with --require-dpop and --web-origin set to this app's origin. */
  clientId: string;
  /** The example API's base URL (GET {apiUrl}/hello; it must allow this app's origin) and its audience. */
  apiUrl: string;
  apiAudience: string;
  /** 0 (the default) picks a free port. Register `{url}/callback` and `{url}/signed-out`. */
  port?: number;
};

export type RunningSpa = { url: string; close(): Promise<void> };

const publicDir = fileURLToPath(new URL('./public/', import.meta.url));
// The library's own ESM build, served from this origin: no CDN, so no third party can change the code that
// handles the tokens (and the CSP below allows scripts from this origin only).
const oauth4webapi = fileURLToPath(import.meta.resolve('oauth4webapi'));

/** What the server serves, by path: the same page for every route of the app, which reads the URL itself. */
const files: Record<string, { file: string; type: string }> = {
  '/': { file: `${publicDir}index.html`, type: 'text/html; charset=utf-8' },
  '/callback': { file: `${publicDir}index.html`, type: 'text/html; charset=utf-8' },
  '/signed-out': { file: `${publicDir}index.html`, type: 'text/html; charset=utf-8' },
  '/app.js': { file: `${publicDir}app.js`, type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: `${publicDir}style.css`, type: 'text/css; charset=utf-8' },
  '/vendor/oauth4webapi.js': { file: oauth4webapi, type: 'text/javascript; charset=utf-8' },
};

/**
 * A static single-page app and the small server that serves it. Everything the app does happens in the browser
 * (public/app.js): code + PKCE + DPoP with oauth4webapi, tokens in memory only. The server serves files and the
 * app's settings, nothing else: no session, no cookie, no token ever reaches it.
 */
export async function startSpa(options: SpaOptions): Promise<RunningSpa> {
  const settings = JSON.stringify({ issuer: options.issuer, clientId: options.clientId, apiUrl: options.apiUrl, apiAudience: options.apiAudience });
  const connect = [new URL(options.issuer).origin, new URL(options.apiUrl).origin].join(' ');
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://spa').pathname;
    const headers = {
      // Scripts and styles from this origin only; fetch only to Latchkey and the API; the code in the callback URL
      // is never sent on as a Referer.
      'Content-Security-Policy': `default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' ${connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-store',
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return res.writeHead(405, { ...headers, Allow: 'GET, HEAD' }).end();
    if (path === '/settings.json') return res.writeHead(200, { ...headers, 'Content-Type': 'application/json' }).end(settings);
    const served = files[path];
    if (!served) return res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end('not found');
    res.writeHead(200, { ...headers, 'Content-Type': served.type });
    fs.createReadStream(served.file).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://localhost:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
