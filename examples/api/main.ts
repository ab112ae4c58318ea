import { startApi } from './api.js';

// `npx tsx examples/api/main.ts`: the example API on its own. Environment: ISSUER (default http://localhost:3000),
// API_AUDIENCE (default http://localhost:4000), API_PORT (default 4000).
const port = Number(process.env.API_PORT ?? 4000);
const api = await startApi({
  issuer: process.env.ISSUER ?? 'http://localhost:3000',
  audience: process.env.API_AUDIENCE ?? `http://localhost:${port}`,
  port,
});
console.log(`example api: ${api.url}/hello`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => api.close().then(() => process.exit(0)));
