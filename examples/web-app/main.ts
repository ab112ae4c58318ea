import { startWebApp, type WebAppOptions } from './web-app.js';

// `npx tsx examples/web-app/main.ts`: one example web app on its own, against a running Latchkey. Environment:
// ISSUER (required: Latchkey's issuer URL), CLIENT_ID and CLIENT_SECRET (required: from `latchkey clients create`),
// APP_PORT (default 4001; 0 picks a free port), API_URL (default http://localhost:4000), API_AUDIENCE (default
// API_URL), APP_NAME (default "Example app"). Register {url}/callback, {url}/signed-out and {url}/backchannel-logout.

type Env = Record<string, string | undefined>;

const isHttpUrl = (value: string) => URL.canParse(value) && ['http:', 'https:'].includes(new URL(value).protocol);

/** Every setting checked before anything starts; all problems are reported together, none silently defaulted. */
function readOptions(env: Env): { options: WebAppOptions; problems: string[] } {
  const problems: string[] = [];
  const required = (name: string, what: string) => {
    if (!env[name]) problems.push(`${name} is required (${what})`);
    return env[name] ?? '';
  };
  const url = (name: string, value: string) => {
    if (value && !isHttpUrl(value)) problems.push(`${name} must be an http(s) URL, got "${value}"`);
    return value;
  };
  const issuer = url('ISSUER', required('ISSUER', "Latchkey's issuer URL, e.g. http://localhost:3000"));
  const clientId = required('CLIENT_ID', 'the client id registered with `latchkey clients create`');
  const clientSecret = required('CLIENT_SECRET', 'the client secret printed by `latchkey clients create`');
  const portText = env.APP_PORT || '4001';
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) problems.push(`APP_PORT must be a port number from 0 to 65535, got "${portText}"`);
  const apiUrl = url('API_URL', env.API_URL || 'http://localhost:4000');
  const options: WebAppOptions = {
    issuer, clientId, clientSecret, apiUrl,
    apiAudience: env.API_AUDIENCE || apiUrl,
    port: Number(portText),
    name: env.APP_NAME || 'Example app',
  };
  return { options, problems };
}

const { options, problems } = readOptions(process.env);
if (problems.length > 0) {
  console.error(`example web app: invalid environment: ${problems.join('; ')}`);
  process.exit(1);
}
try {
  const app = await startWebApp(options);
  console.log(`example web app: ${app.url} (client ${options.clientId} of ${options.issuer})`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => app.close().then(() => process.exit(0)));
} catch (error) {
  // Latchkey unreachable (discovery failed) or the port taken: one line, no stack trace.
  const { message, cause } = error as Error & { cause?: Error };
  console.error(`example web app: could not start: ${message}${cause?.message ? ` (${cause.message})` : ''}`);
  process.exit(1);
}
