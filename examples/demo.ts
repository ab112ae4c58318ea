import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import type { Services } from '../src/services.js';
import { startServer } from '../src/server.js';
import { DuplicateEmailError } from '../src/store/users.js';
import { startApi } from './api/api.js';
import { startWebApp } from './web-app/web-app.js';

// `npm run demo`: Latchkey, the example API and two example web apps on fixed ports, with a demo user.
// Environment (all optional): DEMO_DIR (data/demo), LATCHKEY_PORT (3000), API_PORT (4000), APP1_PORT (4001),
// APP2_PORT (4002), DEMO_EMAIL (demo@example.com), DEMO_PASSWORD (correct horse battery staple).
const env = process.env;
const dir = path.resolve(env.DEMO_DIR || 'data/demo');

/** Every port checked before anything starts; all problems reported together, none silently becoming NaN. */
function readPorts() {
  const problems: string[] = [];
  const port = (name: string, fallback: number) => {
    const text = env[name] || String(fallback);
    // Not 0: the demo registers the apps' URLs before they listen, so it needs to know every port up front.
    if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65535) problems.push(`${name} must be a port number from 1 to 65535, got "${text}"`);
    return Number(text);
  };
  const ports = { latchkey: port('LATCHKEY_PORT', 3000), api: port('API_PORT', 4000), notes: port('APP1_PORT', 4001), calendar: port('APP2_PORT', 4002) };
  if (problems.length > 0) {
    console.error(`demo: invalid environment: ${problems.join('; ')}`);
    process.exit(1);
  }
  return ports;
}
const ports = readPorts();
const demoUser = { email: env.DEMO_EMAIL || 'demo@example.com', password: env.DEMO_PASSWORD || 'correct horse battery staple' };
const apiUrl = `http://localhost:${ports.api}`;
const apiAudience = apiUrl;

/** Registers (or re-registers, keeping its secret) one example app; skipConsent marks a first-party app. */
async function registerApp(services: Services, clientId: string, name: string, port: number, skipConsent: boolean) {
  const url = `http://localhost:${port}`;
  const existing = await services.clients.find(clientId);
  const clientSecret = existing?.clientSecret ?? randomBytes(32).toString('base64url');
  if (existing) await services.clients.delete(clientId);
  await services.clients.register({
    clientId, clientSecret, name, skipConsent,
    // The apps ask for the example API's read scope (web-app/sign-in.ts): that, and nothing more.
    apis: [{ audience: apiAudience, scopes: ['read'] }],
    redirectUris: [`${url}/callback`],
    postLogoutRedirectUris: [`${url}/signed-out`],
    backchannelLogoutUri: `${url}/backchannel-logout`,
    grantTypes: ['authorization_code', 'refresh_token'],
  });
  return clientSecret;
}

fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
const config = loadConfig({
  PORT: String(ports.latchkey),
  DATABASE_URL: `sqlite:${path.join(dir, 'latchkey.sqlite')}`,
  KEYS_DIR: path.join(dir, 'keys'),
  KEYS_ACTIVATION_DELAY: '0',
});
const latchkey = await startServer(config);
const { services, issuer } = latchkey;

try {
  await services.accounts.create({ ...demoUser, givenName: 'Demo', familyName: 'User', emailVerified: true });
} catch (error) {
  if (!(error instanceof DuplicateEmailError)) throw error;
  await services.accounts.setPassword(demoUser.email, demoUser.password);
}
await services.apis.register(apiAudience, ['read', 'write']);
const notesSecret = await registerApp(services, 'demo-notes', 'Notes (asks for consent)', ports.notes, false);
const calendarSecret = await registerApp(services, 'demo-calendar', 'Calendar (first-party, no consent page)', ports.calendar, true);

const api = await startApi({ issuer, audience: apiAudience, port: ports.api });
const apps = [
  await startWebApp({ issuer, clientId: 'demo-notes', clientSecret: notesSecret, apiUrl, apiAudience, port: ports.notes, name: 'Notes' }),
  await startWebApp({ issuer, clientId: 'demo-calendar', clientSecret: calendarSecret, apiUrl, apiAudience, port: ports.calendar, name: 'Calendar' }),
];

console.log(`
Latchkey           ${issuer}   (database and keys in ${dir})
Example API        ${api.url}/hello
App 1 "Notes"      ${apps[0].url}
App 2 "Calendar"   ${apps[1].url}

Sign in with       ${demoUser.email} / ${demoUser.password}
Sign in to Notes, call the API, then open Calendar: you are signed in without a password. Ctrl-C stops everything.
`);

async function shutdown() {
  for (const app of apps) await app.close();
  await api.close();
  await latchkey.close();
  process.exit(0);
}
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
