import { startSpa } from './spa.js';

// `npx tsx examples/spa/main.ts`: the single-page app on its own. Environment: ISSUER (default
// http://localhost:3000), SPA_PORT (default 5000), CLIENT_ID (default spa), API_URL (default http://localhost:4000),
// API_AUDIENCE (default API_URL). Register it first:
//   latchkey clients create --client-id spa --public --require-dpop --web-origin http://localhost:5000 \
//     --redirect-uri http://localhost:5000/callback --post-logout-redirect-uri http://localhost:5000/signed-out \
//     --api http://localhost:4000:read

const env = process.env;
const portText = env.SPA_PORT || '5000';
const problems: string[] = [];
if (!/^\d+$/.test(portText) || Number(portText) > 65535) problems.push(`SPA_PORT must be a port number from 0 to 65535, got "${portText}"`);
for (const name of ['ISSUER', 'API_URL', 'API_AUDIENCE']) {
  const value = env[name];
  if (value && !URL.canParse(value)) problems.push(`${name} must be an absolute URL, got "${value}"`);
}
if (problems.length > 0) {
  console.error(`example spa: invalid environment: ${problems.join('; ')}`);
  process.exit(1);
}
const apiUrl = env.API_URL || 'http://localhost:4000';
try {
  const spa = await startSpa({
    issuer: env.ISSUER || 'http://localhost:3000', clientId: env.CLIENT_ID || 'spa', apiUrl, apiAudience: env.API_AUDIENCE || apiUrl, port: Number(portText),
  });
  console.log(`example spa: ${spa.url}`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => spa.close().then(() => process.exit(0)));
} catch (error) {
  console.error(`example spa: could not start: ${(error as Error).message}`);
  process.exit(1);
}
