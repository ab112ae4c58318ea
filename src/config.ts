import path from 'node:path';

export type Config = {
  port: number;
  /** null: derive `http://localhost:<port>` from the port actually bound (PORT=0 without ISSUER). */
  issuer: string | null;
  databaseUrl: string;
  databasePoolSize: number;
  databaseTimeoutMs: number;
  keysDir: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  idTokenTtlSeconds: number;
  sessionTtlSeconds: number;
  keysReloadIntervalSeconds: number;
  keysActivationDelaySeconds: number;
  workers: number;
  shutdownTimeoutSeconds: number;
  /**
   * Whether logout tokens may be POSTed to a back-channel logout URI that resolves to a loopback, private or other
   * special-use address. oidc-provider refuses such targets for all its outgoing requests (SSRF protection); this
   * lifts the refusal for back-channel logout only (jwks_uri, sector_identifier_uri … stay protected).
   */
  backchannelAllowPrivateTargets: boolean;
  isProduction: boolean;
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Reads a positive whole number; records a problem instead of silently falling back. */
function readPositiveInteger(env: Env, name: string, fallback: number, problems: string[], max = 10 * 365 * 86400): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1 || Number(raw) > max) {
    problems.push(`${name} must be a whole number between 1 and ${max}, got "${raw}"`);
    return fallback;
  }
  return Number(raw);
}

function readNonNegativeInteger(env: Env, name: string, fallback: number, problems: string[]): number {
  return env[name] === '0' ? 0 : readPositiveInteger(env, name, fallback, problems);
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]';
}

function readIssuer(env: Env, port: number, isProduction: boolean, problems: string[]): string | null {
  if (!env.ISSUER && port === 0) return null;
  const raw = env.ISSUER || `http://localhost:${port}`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    problems.push(`ISSUER must be an absolute URL, got "${raw}"`);
    return raw;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    problems.push(`ISSUER must use https (or http on localhost), got "${raw}"`);
  } else if (url.search || url.hash) {
    // OpenID Connect Discovery §3: the issuer has no query or fragment.
    problems.push(`ISSUER must not have a query or fragment, got "${raw}"`);
  } else if (url.pathname !== '/') {
    // Latchkey serves its endpoints at the root of the host; a path prefix would be missing from every URL it builds.
    problems.push(`ISSUER must not have a path (serve Latchkey at the root of its own host), got "${raw}"`);
  } else if (isProduction && url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    problems.push(`ISSUER must use https when NODE_ENV=production (only localhost may use http), got "${raw}"`);
  }
  return raw.replace(/\/$/, '');
}

function readBoolean(env: Env, name: string, fallback: boolean, problems: string[]): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  problems.push(`${name} must be true or false, got "${raw}"`);
  return fallback;
}

function readDatabaseUrl(env: Env, problems: string[]): string {
  const raw = env.DATABASE_URL || 'sqlite:data/latchkey.sqlite';
  if (!/^(sqlite:|postgres:\/\/|postgresql:\/\/)/.test(raw)) {
    problems.push(`DATABASE_URL must start with sqlite: or postgres://, got "${raw.replace(/\/\/[^@/]*@/, '//***@')}"`);
  }
  return raw;
}

/** The only reader of process.env: parses every variable and reports every problem at once. */
export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const isProduction = env.NODE_ENV === 'production';
  const port = env.PORT === '0' ? 0 : readPositiveInteger(env, 'PORT', 3000, problems, 65535);
  const config: Config = {
    port,
    issuer: readIssuer(env, port, isProduction, problems),
    databaseUrl: readDatabaseUrl(env, problems),
    databasePoolSize: readPositiveInteger(env, 'DATABASE_POOL_SIZE', 10, problems, 1000),
    databaseTimeoutMs: readPositiveInteger(env, 'DATABASE_TIMEOUT_MS', 5000, problems, 600_000),
    keysDir: path.resolve(env.KEYS_DIR || 'keys'),
    accessTokenTtlSeconds: readPositiveInteger(env, 'ACCESS_TOKEN_TTL', 300, problems),
    refreshTokenTtlSeconds: readPositiveInteger(env, 'REFRESH_TOKEN_TTL', 7 * 86400, problems),
    idTokenTtlSeconds: readPositiveInteger(env, 'ID_TOKEN_TTL', 3600, problems),
    sessionTtlSeconds: readPositiveInteger(env, 'SESSION_TTL', 14 * 86400, problems),
    keysReloadIntervalSeconds: readPositiveInteger(env, 'KEYS_RELOAD_INTERVAL', 30, problems, 86400),
    keysActivationDelaySeconds: readNonNegativeInteger(env, 'KEYS_ACTIVATION_DELAY', 60, problems),
    workers: readPositiveInteger(env, 'WORKERS', 1, problems, 64),
    shutdownTimeoutSeconds: readPositiveInteger(env, 'SHUTDOWN_TIMEOUT', 10, problems, 3600),
    // Relying parties on the same host or network are the norm in development, the exception in production.
    backchannelAllowPrivateTargets: readBoolean(env, 'BACKCHANNEL_ALLOW_PRIVATE_TARGETS', !isProduction, problems),
    isProduction,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
