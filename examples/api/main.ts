import { startApi, type ApiOptions } from './api.js';

// `npx tsx examples/api/main.ts`: the example API on its own. Environment: ISSUER (default http://localhost:3000),
// API_PORT (default 4000; 0 picks a free port), API_AUDIENCE (default http://localhost:$API_PORT; required with
// API_PORT=0), API_CORS_ORIGINS (browser origins allowed to call it, separated by spaces, e.g. the example SPA's
// http://localhost:5000).

type Env = Record<string, string | undefined>;

const isHttpUrl = (value: string) => URL.canParse(value) && ['http:', 'https:'].includes(new URL(value).protocol);

/** Every setting checked before anything starts; all problems are reported together, none silently defaulted. */
function readOptions(env: Env): { options: ApiOptions; problems: string[] } {
  const problems: string[] = [];
  const issuer = env.ISSUER || 'http://localhost:3000';
  if (!isHttpUrl(issuer)) problems.push(`ISSUER must be an http(s) URL, got "${issuer}"`);
  const portText = env.API_PORT || '4000';
  const isPort = /^\d+$/.test(portText) && Number(portText) <= 65535;
  if (!isPort) problems.push(`API_PORT must be a port number from 0 to 65535, got "${portText}"`);
  const port = Number(portText);
  if (isPort && port === 0 && !env.API_AUDIENCE) problems.push('API_AUDIENCE is required with API_PORT=0 (the audience cannot be derived from a port not yet chosen)');
  const corsOrigins = (env.API_CORS_ORIGINS ?? '').split(' ').filter(Boolean);
  for (const origin of corsOrigins) if (!isHttpUrl(origin) || new URL(origin).origin !== origin) problems.push(`API_CORS_ORIGINS must list origins (scheme://host[:port]), got "${origin}"`);
  return { options: { issuer, audience: env.API_AUDIENCE || `http://localhost:${port}`, port, corsOrigins }, problems };
}

const { options, problems } = readOptions(process.env);
if (problems.length > 0) {
  console.error(`example api: invalid environment: ${problems.join('; ')}`);
  process.exit(1);
}
try {
  const api = await startApi(options);
  console.log(`example api: ${api.url}/hello`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => api.close().then(() => process.exit(0)));
} catch (error) {
  // The port is taken, most likely: one line, no stack trace.
  console.error(`example api: could not start: ${(error as Error).message}`);
  process.exit(1);
}
