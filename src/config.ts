import path from 'node:path';
import { isLoopbackHost } from './absolute-uri.js';
import { UserFacingError } from './user-facing-error.js';

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
  /**
   * Lifetime of a session nobody has signed in to (a cookie-less visit to the logout endpoint stores one): long
   * enough to answer the logout page, far shorter than `sessionTtlSeconds`, so anonymous visits cannot pile up rows.
   */
  anonymousSessionTtlSeconds: number;
  /** Lifetime of a sign-in in progress (oidc-provider's interaction, created by every authorization request). */
  interactionTtlSeconds: number;
  /**
   * The largest query string plus body accepted by the routes where an anonymous request stores what it sent
   * (authorization, pushed authorization and end-session requests); a larger one gets `invalid_request`.
   */
  anonymousRequestMaxBytes: number;
  keysReloadIntervalSeconds: number;
  keysActivationDelaySeconds: number;
  workers: number;
  /**
   * UV_THREADPOOL_SIZE as the operator set it (null: not set). libuv reads it itself when the process starts; it is
   * validated here because libuv turns a value it cannot parse into a single thread.
   */
  threadPoolSize: number | null;
  shutdownTimeoutSeconds: number;
  /**
   * Whether logout tokens may be POSTed to a back-channel logout URI that resolves to a loopback, private or other
   * special-use address. oidc-provider refuses such targets for all its outgoing requests (SSRF protection); this
   * lifts the refusal for back-channel logout only (jwks_uri, sector_identifier_uri … stay protected).
   */
  backchannelAllowPrivateTargets: boolean;
  /**
   * How many reverse proxies in front of Latchkey to trust (0: none). With N, the client IP is the address the
   * N-th proxy from us saw (X-Forwarded-For, counted from the right, so a client cannot choose it) and https comes
   * from X-Forwarded-Proto; with 0 those headers are ignored.
   */
  trustedProxyCount: number;
  isProduction: boolean;
  /** NIST SP 800-63B §3.1.1.2: at least 8; passphrases up to maximumPasswordLength are always allowed. */
  passwordMinLength: number;
  /**
   * Password checks that may wait for a free hashing slot in this process; beyond that a sign-in gets 503 at once.
   * Each waits about one hash time per place ahead of it, so the queue bounds how slow a burst makes every sign-in.
   */
  passwordHashQueueLength: number;
  loginThrottle: LoginThrottleSettings;
  /**
   * Requests per minute from one IP to the endpoints that store something for whoever asks, signed in or not:
   * authorization (/auth, /request), logout (/session/end) and the sign-in forms. Counted in the database.
   */
  statefulRequestsPerIpPerMinute: number;
  deviceFlow: DeviceFlowSettings;
  logLevel: LogLevel;
  auditRetentionDays: number;
  mfa: MfaSettings;
  /** A password or email change on the account page from a session signed in longer ago asks for the password again. */
  reauthAfterSeconds: number;
  /** Email delivery and the mailed links: see docs/email.md. */
  mail: MailSettings;
  /** Upstream connections (docs/federation.md): how long a request to an upstream provider may take. */
  upstreamTimeoutSeconds: number;
  /** How long an upstream's discovery document (and the JWKS fetched with it) is used before it is fetched again. */
  upstreamMetadataTtlSeconds: number;
  clientRegistration: ClientRegistrationSettings;
};

/** Second factors (docs/mfa.md); see "Second factors" in docs/security.md. */
export type MfaSettings = {
  /** optional: people may enrol a second factor; required: everyone must, at their next sign-in. */
  policy: 'optional' | 'required';
  /** TOTP codes accepted from this many 30-second steps before or after now (RFC 6238 §5.2), 0 to 2. */
  totpDriftSteps: number;
  /** How long a passkey ceremony's challenge stays usable (WebAuthn's `timeout`), 30 to 600 seconds. */
  passkeyTimeoutSeconds: number;
};

/** SMTP_URL, EMAIL_FROM and the outbox's retries; the links people are mailed, sign-up and verification. */
export type MailSettings = {
  /** null: no SMTP server (development): mails are written to the log instead. */
  smtpUrl: string | null;
  emailFrom: string;
  /** Connecting, the greeting and every wait for the SMTP server give up after this long. */
  smtpTimeoutMs: number;
  /** Deliveries tried per mail before it is `failed`; the n-th retry waits retryBaseSeconds·2^(n-1), at most retryMaxSeconds. */
  maxAttempts: number;
  retryBaseSeconds: number;
  retryMaxSeconds: number;
  inviteTtlSeconds: number;
  /** How long the sign-in ticket an accepted invitation leaves in the browser works (docs/security.md, "Mailed links"). */
  inviteSignInTtlSeconds: number;
  passwordResetTtlSeconds: number;
  emailVerificationTtlSeconds: number;
  /** Whether the login page offers "Forgot your password?". */
  isPasswordResetEnabled: boolean;
  /** Requests of reset links for one address, and from one IP, per hour (the sign-up form counts per IP too). */
  resetsPerAddressPerHour: number;
  resetsPerIpPerHour: number;
  registration: 'open' | 'closed';
  /** Sign-up is limited to these domains (lower case); empty: any. */
  registrationEmailDomains: string[];
  /** A self-registered account signs in to apps only once its address is verified. */
  requireVerifiedEmail: boolean;
};

/** Dynamic client registration (RFC 7591); see "Dynamic client registration" in docs/apps.md. */
export type ClientRegistrationSettings = {
  /** closed: only the CLI registers clients; token: an initial access token is needed; open: anyone may register. */
  mode: 'closed' | 'token' | 'open';
  /** Registrations attempted from one IP per hour, counted in the database. */
  perIpPerHour: number;
};

/** How hard the hosted login form pushes back on guessing; see "Credential attacks" in docs/security.md. */
export type LoginThrottleSettings = {
  /** Failures for one account from one IP before that pair is locked. */
  pairMaxFailures: number;
  /** The first lock of a pair; every further failure doubles it, up to lockMaxSeconds. */
  lockSeconds: number;
  lockMaxSeconds: number;
  /** Failures for one account from all IPs together per hour; then the account's form locks for the hour. */
  accountMaxFailuresPerHour: number;
  /** Failures from one IP over all accounts per day; then that IP's sign-ins lock for the day. */
  ipMaxFailuresPerDay: number;
  /** Sign-in attempts, successful ones included, from one IP per minute: bounds the password hashing one IP causes. */
  ipMaxAttemptsPerMinute: number;
  /** Sign-in attempts, successful ones included, for one account per minute. */
  accountMaxAttemptsPerMinute: number;
};

/** The device authorization grant (RFC 8628); see "Devices and CLIs" in docs/security.md. */
export type DeviceFlowSettings = {
  /** How long a device code and its user code are valid (RFC 8628 §3.2 `expires_in`). */
  codeTtlSeconds: number;
  /** The polling interval a device is told (§3.2 `interval`); polling faster gets `slow_down` (§3.5). */
  pollIntervalSeconds: number;
  /** User codes one IP may try per minute on the /device page (§5.1: user codes are short, guessing must be slow). */
  maxAttemptsPerMinute: number;
};

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

export class ConfigError extends UserFacingError {
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

/** TRUST_PROXY: false or 0 (no proxy), true or 1 (one proxy), or the number of proxies in the chain. */
function readTrustedProxyCount(env: Env, problems: string[]): number {
  const raw = env.TRUST_PROXY;
  if (raw === undefined || raw === '' || raw === 'false' || raw === '0') return 0;
  if (raw === 'true') return 1;
  if (/^\d+$/.test(raw) && Number(raw) <= 10) return Number(raw);
  problems.push(`TRUST_PROXY must be true, false or the number of proxies in front of Latchkey (0 to 10), got "${raw}"`);
  return 0;
}

function readDatabaseUrl(env: Env, problems: string[]): string {
  const raw = env.DATABASE_URL || 'sqlite:data/latchkey.sqlite';
  if (!/^(sqlite:|postgres:\/\/|postgresql:\/\/)/.test(raw)) {
    problems.push(`DATABASE_URL must start with sqlite: or postgres://, got "${raw.replace(/\/\/[^@/]*@/, '//***@')}"`);
  }
  // Each connection would get an empty database of its own, and every user, client and session would go at restart.
  if (raw === 'sqlite:' || raw === 'sqlite::memory:') problems.push(`DATABASE_URL must name a file (sqlite:PATH): an in-memory SQLite database is not supported, got "${raw}"`);
  return raw;
}

function readLogLevel(env: Env, problems: string[]): LogLevel {
  const raw = env.LOG_LEVEL || 'info';
  if (!(logLevels as readonly string[]).includes(raw)) {
    problems.push(`LOG_LEVEL must be one of ${logLevels.join(', ')}, got "${raw}"`);
    return 'info';
  }
  return raw as LogLevel;
}

function readLoginThrottle(env: Env, problems: string[]): LoginThrottleSettings {
  const settings = {
    pairMaxFailures: readPositiveInteger(env, 'LOGIN_PAIR_MAX_FAILURES', 5, problems, 1000),
    lockSeconds: readPositiveInteger(env, 'LOGIN_LOCK_SECONDS', 60, problems, 86400),
    lockMaxSeconds: readPositiveInteger(env, 'LOGIN_LOCK_MAX_SECONDS', 3600, problems, 7 * 86400),
    accountMaxFailuresPerHour: readPositiveInteger(env, 'LOGIN_ACCOUNT_MAX_FAILURES_PER_HOUR', 100, problems, 1_000_000),
    ipMaxFailuresPerDay: readPositiveInteger(env, 'LOGIN_IP_MAX_FAILURES_PER_DAY', 500, problems, 1_000_000),
    ipMaxAttemptsPerMinute: readPositiveInteger(env, 'LOGIN_IP_MAX_ATTEMPTS_PER_MINUTE', 120, problems, 1_000_000),
    accountMaxAttemptsPerMinute: readPositiveInteger(env, 'LOGIN_ACCOUNT_MAX_ATTEMPTS_PER_MINUTE', 30, problems, 1_000_000),
  };
  if (settings.lockMaxSeconds < settings.lockSeconds) {
    problems.push(`LOGIN_LOCK_MAX_SECONDS (${settings.lockMaxSeconds}) must be at least LOGIN_LOCK_SECONDS (${settings.lockSeconds})`);
  }
  return settings;
}

function readAnonymousSessionTtl(env: Env, sessionTtlSeconds: number, problems: string[]): number {
  const value = readPositiveInteger(env, 'ANONYMOUS_SESSION_TTL', Math.min(600, sessionTtlSeconds), problems);
  if (value > sessionTtlSeconds) problems.push(`ANONYMOUS_SESSION_TTL (${value}) must not exceed SESSION_TTL (${sessionTtlSeconds})`);
  return value;
}

/** Largest accepted oidc-provider request body (its own limit); an ID token hint alone takes about a kilobyte. */
const anonymousRequestBytes = { min: 1024, max: 56 * 1024 };

function readAnonymousRequestMaxBytes(env: Env, problems: string[]): number {
  const value = readPositiveInteger(env, 'ANONYMOUS_REQUEST_MAX_BYTES', 4096, problems, anonymousRequestBytes.max);
  if (value < anonymousRequestBytes.min) {
    problems.push(`ANONYMOUS_REQUEST_MAX_BYTES must be between ${anonymousRequestBytes.min} and ${anonymousRequestBytes.max}, got "${env.ANONYMOUS_REQUEST_MAX_BYTES}"`);
  }
  return value;
}

function readPasswordMinLength(env: Env, problems: string[]): number {
  const value = readPositiveInteger(env, 'PASSWORD_MIN_LENGTH', 8, problems, 64);
  // NIST SP 800-63B: never below 8; and at most 64, which every policy must accept.
  if (value < 8) problems.push(`PASSWORD_MIN_LENGTH must be between 8 and 64, got "${env.PASSWORD_MIN_LENGTH}"`);
  return value;
}

function readPasskeyTimeout(env: Env, problems: string[]): number {
  const value = readPositiveInteger(env, 'MFA_PASSKEY_TIMEOUT', 300, problems, 600);
  if (value < 30) problems.push(`MFA_PASSKEY_TIMEOUT must be between 30 and 600 seconds, got "${env.MFA_PASSKEY_TIMEOUT}"`);
  return value;
}

function readMfa(env: Env, problems: string[]): MfaSettings {
  const policy = env.MFA || 'optional';
  if (policy !== 'optional' && policy !== 'required') problems.push(`MFA must be optional or required, got "${policy}"`);
  const drift = env.MFA_TOTP_DRIFT_STEPS;
  if (drift !== undefined && drift !== '' && !/^[0-2]$/.test(drift)) problems.push(`MFA_TOTP_DRIFT_STEPS must be 0, 1 or 2, got "${drift}"`);
  return {
    policy: policy === 'required' ? 'required' : 'optional',
    totpDriftSteps: drift && /^[0-2]$/.test(drift) ? Number(drift) : 1,
    passkeyTimeoutSeconds: readPasskeyTimeout(env, problems),
  };
}

/** EMAIL_FROM: an address, or `Name <address>`, on one line. */
function readEmailFrom(env: Env, hasSmtp: boolean, problems: string[]): string {
  const raw = env.EMAIL_FROM;
  if (!raw) {
    if (hasSmtp) problems.push('EMAIL_FROM is required with SMTP_URL (e.g. "Latchkey <login@example.com>")');
    return 'Latchkey <latchkey@localhost>';
  }
  if (!/^([^\r\n<>@,;"]*<[^\s<>@,;"]+@[^\s<>@,;"]+>|[^\s<>@,;"]+@[^\s<>@,;"]+)$/.test(raw.trim())) {
    problems.push(`EMAIL_FROM must be an address or "Name <address>", got "${raw}"`);
  }
  return raw.trim();
}

function readSmtpUrl(env: Env, problems: string[]): string | null {
  const raw = env.SMTP_URL;
  if (!raw) return null;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    // The URL may hold a password: only its shape is described.
  }
  const tls = url?.searchParams.get('tls');
  if (!url || (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') || !url.hostname) {
    problems.push('SMTP_URL must look like smtp://user:password@host:587 or smtps://user:password@host:465');
  } else if (tls !== null && (tls !== 'false' || url.protocol !== 'smtp:')) {
    problems.push('SMTP_URL takes only ?tls=false, and only with smtp:// (a local relay without STARTTLS)');
  }
  return raw;
}

function readRegistrationDomains(env: Env): string[] {
  return (env.REGISTRATION_EMAIL_DOMAINS ?? '').split(',').map((domain) => domain.trim().toLowerCase().replace(/^@/, '')).filter(Boolean);
}

function readMail(env: Env, isProduction: boolean, problems: string[]): MailSettings {
  const smtpUrl = readSmtpUrl(env, problems);
  const registration = env.REGISTRATION || 'closed';
  if (registration !== 'open' && registration !== 'closed') problems.push(`REGISTRATION must be open or closed, got "${registration}"`);
  // Without SMTP_URL mail goes to the log: fine in development, a lost mail (and a link in the log) in production.
  const canMail = smtpUrl !== null || !isProduction;
  const isPasswordResetEnabled = readBoolean(env, 'PASSWORD_RESET', canMail, problems);
  if (!canMail && isPasswordResetEnabled) problems.push('PASSWORD_RESET=true needs SMTP_URL when NODE_ENV=production');
  if (!canMail && registration === 'open') problems.push('REGISTRATION=open needs SMTP_URL when NODE_ENV=production');
  const retryBaseSeconds = readPositiveInteger(env, 'MAIL_RETRY_BASE_SECONDS', 30, problems, 86400);
  const retryMaxSeconds = readPositiveInteger(env, 'MAIL_RETRY_MAX_SECONDS', 3600, problems, 7 * 86400);
  if (retryMaxSeconds < retryBaseSeconds) problems.push(`MAIL_RETRY_MAX_SECONDS (${retryMaxSeconds}) must be at least MAIL_RETRY_BASE_SECONDS (${retryBaseSeconds})`);
  return {
    smtpUrl,
    emailFrom: readEmailFrom(env, smtpUrl !== null, problems),
    smtpTimeoutMs: readPositiveInteger(env, 'SMTP_TIMEOUT', 30, problems, 600) * 1000,
    maxAttempts: readPositiveInteger(env, 'MAIL_MAX_ATTEMPTS', 8, problems, 100),
    retryBaseSeconds,
    retryMaxSeconds,
    inviteTtlSeconds: readPositiveInteger(env, 'INVITE_TTL', 7 * 86400, problems, 90 * 86400),
    inviteSignInTtlSeconds: readPositiveInteger(env, 'INVITE_SIGN_IN_TTL', 300, problems, 3600),
    passwordResetTtlSeconds: readPositiveInteger(env, 'PASSWORD_RESET_TTL', 1800, problems, 86400),
    emailVerificationTtlSeconds: readPositiveInteger(env, 'EMAIL_VERIFICATION_TTL', 86400, problems, 30 * 86400),
    isPasswordResetEnabled,
    resetsPerAddressPerHour: readPositiveInteger(env, 'PASSWORD_RESET_MAX_PER_ADDRESS_PER_HOUR', 3, problems, 1000),
    resetsPerIpPerHour: readPositiveInteger(env, 'PASSWORD_RESET_MAX_PER_IP_PER_HOUR', 30, problems, 1_000_000),
    registration: registration === 'open' ? 'open' : 'closed',
    registrationEmailDomains: readRegistrationDomains(env),
    requireVerifiedEmail: readBoolean(env, 'REQUIRE_VERIFIED_EMAIL', true, problems),
  };
}

function readClientRegistration(env: Env, problems: string[]): ClientRegistrationSettings {
  const mode = env.CLIENT_REGISTRATION || 'closed';
  if (mode !== 'closed' && mode !== 'token' && mode !== 'open') {
    problems.push(`CLIENT_REGISTRATION must be closed, token or open, got "${mode}"`);
  }
  return {
    mode: mode === 'token' || mode === 'open' ? mode : 'closed',
    perIpPerHour: readPositiveInteger(env, 'CLIENT_REGISTRATIONS_PER_IP_PER_HOUR', 10, problems, 1_000_000),
  };
}

/** The only reader of process.env: parses every variable and reports every problem at once. */
export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const isProduction = env.NODE_ENV === 'production';
  const port = env.PORT === '0' ? 0 : readPositiveInteger(env, 'PORT', 3000, problems, 65535);
  const sessionTtlSeconds = readPositiveInteger(env, 'SESSION_TTL', 14 * 86400, problems);
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
    sessionTtlSeconds,
    anonymousSessionTtlSeconds: readAnonymousSessionTtl(env, sessionTtlSeconds, problems),
    interactionTtlSeconds: readPositiveInteger(env, 'INTERACTION_TTL', 3600, problems, 86400),
    anonymousRequestMaxBytes: readAnonymousRequestMaxBytes(env, problems),
    keysReloadIntervalSeconds: readPositiveInteger(env, 'KEYS_RELOAD_INTERVAL', 30, problems, 86400),
    keysActivationDelaySeconds: readNonNegativeInteger(env, 'KEYS_ACTIVATION_DELAY', 60, problems),
    workers: readPositiveInteger(env, 'WORKERS', 1, problems, 64),
    threadPoolSize: env.UV_THREADPOOL_SIZE ? readPositiveInteger(env, 'UV_THREADPOOL_SIZE', 4, problems, 1024) : null,
    shutdownTimeoutSeconds: readPositiveInteger(env, 'SHUTDOWN_TIMEOUT', 10, problems, 3600),
    // Relying parties on the same host or network are the norm in development, the exception in production.
    backchannelAllowPrivateTargets: readBoolean(env, 'BACKCHANNEL_ALLOW_PRIVATE_TARGETS', !isProduction, problems),
    trustedProxyCount: readTrustedProxyCount(env, problems),
    isProduction,
    passwordMinLength: readPasswordMinLength(env, problems),
    passwordHashQueueLength: readPositiveInteger(env, 'PASSWORD_HASH_QUEUE_LENGTH', 32, problems, 100_000),
    loginThrottle: readLoginThrottle(env, problems),
    statefulRequestsPerIpPerMinute: readPositiveInteger(env, 'STATEFUL_REQUESTS_PER_IP_PER_MINUTE', 600, problems, 1_000_000),
    deviceFlow: {
      codeTtlSeconds: readPositiveInteger(env, 'DEVICE_CODE_TTL', 600, problems, 86400),
      pollIntervalSeconds: readPositiveInteger(env, 'DEVICE_CODE_POLL_INTERVAL', 5, problems, 60),
      maxAttemptsPerMinute: readPositiveInteger(env, 'DEVICE_CODE_MAX_ATTEMPTS_PER_MINUTE', 10, problems, 1000),
    },
    logLevel: readLogLevel(env, problems),
    auditRetentionDays: readPositiveInteger(env, 'AUDIT_RETENTION_DAYS', 90, problems, 100 * 365),
    mfa: readMfa(env, problems),
    reauthAfterSeconds: readPositiveInteger(env, 'REAUTH_AFTER', 600, problems, 86400),
    mail: readMail(env, isProduction, problems),
    upstreamTimeoutSeconds: readPositiveInteger(env, 'UPSTREAM_TIMEOUT', 10, problems, 120),
    upstreamMetadataTtlSeconds: readPositiveInteger(env, 'UPSTREAM_METADATA_TTL', 3600, problems, 86400),
    clientRegistration: readClientRegistration(env, problems),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
