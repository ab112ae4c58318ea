import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../../src/config.js';
import type { Knex } from 'knex';
import { openDatabase, type Database } from '../../src/database.js';
import { startServer, type RunningServer } from '../../src/server.js';
import type { ServiceOptions } from '../../src/services.js';
import { createTestDatabase } from './database.js';

/**
 * `database`: the test's own connection to the server's database, for what no store offers a test (counting rows,
 * the latest expiry, a table renamed away). The server's services hand out no knex. `connection`: the same
 * connection as a Database, for a test that builds a store of its own on it.
 */
export type TestServer = RunningServer & { config: Config; dir: string; database: Knex; connection: Database };

/** Mail settings of a test server: no SMTP server (mails go to the log) unless a test gives one (test/support/smtp.ts). */
export const testMailSettings: Config['mail'] = {
  smtpUrl: null, emailFrom: 'Latchkey <login@example.com>', smtpTimeoutMs: 2000, maxAttempts: 5, retryBaseSeconds: 30, retryMaxSeconds: 3600,
  inviteTtlSeconds: 7 * 86400, inviteSignInTtlSeconds: 300, passwordResetTtlSeconds: 1800, emailVerificationTtlSeconds: 86400, isPasswordResetEnabled: true,
  resetsPerAddressPerHour: 3, resetsPerIpPerHour: 1_000_000, registration: 'closed', registrationEmailDomains: [], requireVerifiedEmail: true,
};

/**
 * A real Latchkey on an ephemeral port with its own database (a SQLite file, or a fresh PostgreSQL database when
 * TEST_DATABASE_URL is set) and keys in a temp dir.
 */
export async function startTestServer(
  overrides: Partial<Config> = {},
  routeDatabaseUrl: (url: string) => string = (url) => url,
  options: ServiceOptions = {},
): Promise<TestServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-test-'));
  const database = await createTestDatabase(dir);
  const config: Config = {
    port: 0,
    issuer: null,
    databaseUrl: routeDatabaseUrl(database.url),
    databasePoolSize: 10,
    databaseTimeoutMs: 5000,
    keysDir: path.join(dir, 'keys'),
    accessTokenTtlSeconds: 300,
    refreshTokenTtlSeconds: 7 * 86400,
    idTokenTtlSeconds: 3600,
    sessionTtlSeconds: 14 * 86400,
    anonymousSessionTtlSeconds: 600,
    interactionTtlSeconds: 3600,
    anonymousRequestMaxBytes: 4096,
    keysReloadIntervalSeconds: 3600,
    keysActivationDelaySeconds: 0,
    workers: 1,
    threadPoolSize: null,
    shutdownTimeoutSeconds: 10,
    backchannelAllowPrivateTargets: true,
    trustedProxyCount: 0,
    isProduction: false,
    passwordMinLength: 8,
    passwordHashQueueLength: 32,
    // Every test request comes from 127.0.0.1: the limits on all attempts and requests per IP (and the attempts
    // per account, which tests signing one user in many times reach) are left out of reach; tests of them lower them.
    loginThrottle: {
      pairMaxFailures: 5, lockSeconds: 60, lockMaxSeconds: 3600, accountMaxFailuresPerHour: 100, ipMaxFailuresPerDay: 500,
      ipMaxAttemptsPerMinute: 1_000_000, accountMaxAttemptsPerMinute: 1_000_000,
    },
    statefulRequestsPerIpPerMinute: 1_000_000,
    // The device code TTL and the throttle of guessed user codes as in production; a one-second polling interval.
    deviceFlow: { codeTtlSeconds: 600, pollIntervalSeconds: 1, maxAttemptsPerMinute: 10 },
    // Tests read their own log lines from `options.logDestination`; without one, the server stays quiet.
    logLevel: options.logDestination ? 'info' : 'silent',
    auditRetentionDays: 90,
    mfa: { policy: 'optional', totpDriftSteps: 1, passkeyTimeoutSeconds: 300 },
    reauthAfterSeconds: 600,
    mail: testMailSettings,
    upstreamTimeoutSeconds: 10,
    upstreamMetadataTtlSeconds: 3600,
    clientRegistration: { mode: 'closed', perIpPerHour: 1_000_000 },
    ...overrides,
  };
  const server = await startServer(config, options);
  // knex connects on the first query, so a test that never looks costs nothing.
  const testConnection = openDatabase(config.databaseUrl, { poolSize: 2 });
  return {
    ...server,
    config,
    dir,
    database: testConnection.knex,
    connection: testConnection,
    async close() {
      await testConnection.destroy();
      await server.close();
      await database.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
