import { runDeviceCli } from './device-cli.js';

// `npx tsx examples/device-cli/main.ts`: sign in from a terminal with the device flow, then call the example API.
// Environment: ISSUER (default http://localhost:3000), CLIENT_ID (required: a public client created with
// `latchkey clients create --public --grant-types urn:ietf:params:oauth:grant-type:device_code --api AUD:read`),
// API_URL (default http://localhost:4000), API_AUDIENCE (default API_URL).

type Env = Record<string, string | undefined>;

const isHttpUrl = (value: string) => URL.canParse(value) && ['http:', 'https:'].includes(new URL(value).protocol);

/** Every setting checked before anything starts; all problems are reported together. */
function readOptions(env: Env) {
  const problems: string[] = [];
  const url = (name: string, value: string) => {
    if (!isHttpUrl(value)) problems.push(`${name} must be an http(s) URL, got "${value}"`);
    return value;
  };
  const issuer = url('ISSUER', env.ISSUER || 'http://localhost:3000');
  if (!env.CLIENT_ID) problems.push('CLIENT_ID is required (a public client allowed the device_code grant)');
  const apiUrl = url('API_URL', env.API_URL || 'http://localhost:4000');
  const apiAudience = url('API_AUDIENCE', env.API_AUDIENCE || apiUrl);
  return { options: { issuer, clientId: env.CLIENT_ID ?? '', apiUrl, apiAudience }, problems };
}

const { options, problems } = readOptions(process.env);
if (problems.length > 0) {
  console.error(`example device cli: invalid environment: ${problems.join('; ')}`);
  process.exit(1);
}
try {
  const { status } = await runDeviceCli({ ...options, print: (line) => console.log(line) });
  process.exit(status === 200 ? 0 : 1);
} catch (error) {
  // Latchkey unreachable, the code expired or the user said no: one line, no stack trace.
  const { message, cause, error: code } = error as Error & { cause?: Error; error?: string };
  console.error(`example device cli: ${code ? `${code}: ` : ''}${message}${cause?.message ? ` (${cause.message})` : ''}`);
  process.exit(1);
}
