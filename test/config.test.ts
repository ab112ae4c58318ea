import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

const run = promisify(execFile);

describe('loadConfig', () => {
  it('has the classic defaults', () => {
    expect(loadConfig({})).toMatchObject({
      port: 3000,
      issuer: 'http://localhost:3000',
      databaseUrl: 'sqlite:data/latchkey.sqlite',
      keysDir: path.resolve('keys'),
      accessTokenTtlSeconds: 300,
      refreshTokenTtlSeconds: 604800,
      idTokenTtlSeconds: 3600,
      sessionTtlSeconds: 1209600,
      isProduction: false,
    });
    expect(loadConfig({ PORT: '4000' }).issuer).toBe('http://localhost:4000');
  });

  it('reports every problem at once', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({ PORT: 'eighty', ACCESS_TOKEN_TTL: '-5', REFRESH_TOKEN_TTL: '1.5', DATABASE_URL: 'mysql://x', ISSUER: 'not a url' });
    } catch (caught) {
      error = caught as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.problems).toHaveLength(5);
    expect(error!.message).toContain('PORT must be a whole number');
    expect(error!.message).toContain('ACCESS_TOKEN_TTL');
    expect(error!.message).toContain('REFRESH_TOKEN_TTL');
    expect(error!.message).toContain('DATABASE_URL must start with sqlite: or postgres://');
    expect(error!.message).toContain('ISSUER must be an absolute URL');
  });

  it('refuses a non-https issuer in production unless it is localhost', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', ISSUER: 'http://id.example.com' })).toThrow(/must use https/);
    expect(loadConfig({ NODE_ENV: 'production', ISSUER: 'https://id.example.com' }).issuer).toBe('https://id.example.com');
    expect(loadConfig({ NODE_ENV: 'production', ISSUER: 'http://localhost:3000' }).issuer).toBe('http://localhost:3000');
  });

  it('refuses an issuer with a query, a fragment or a path', () => {
    expect(() => loadConfig({ ISSUER: 'https://id.example.com/?x=1' })).toThrow(/query or fragment/);
    expect(() => loadConfig({ ISSUER: 'https://example.com/auth' })).toThrow(/must not have a path/);
    expect(loadConfig({ ISSUER: 'https://id.example.com/' }).issuer).toBe('https://id.example.com');
  });

  it('reads the login throttle, log level and audit retention, and refuses bad values together', () => {
    expect(loadConfig({})).toMatchObject({
      loginThrottle: {
        pairMaxFailures: 5, lockSeconds: 60, lockMaxSeconds: 3600, accountMaxFailuresPerHour: 100, ipMaxFailuresPerDay: 500,
        ipMaxAttemptsPerMinute: 120, accountMaxAttemptsPerMinute: 30,
      },
      passwordHashQueueLength: 32,
      statefulRequestsPerIpPerMinute: 600,
      logLevel: 'info',
      auditRetentionDays: 90,
    });
    expect(loadConfig({ LOGIN_PAIR_MAX_FAILURES: '3', LOG_LEVEL: 'warn' })).toMatchObject({ loginThrottle: { pairMaxFailures: 3 }, logLevel: 'warn' });
    let error: ConfigError | undefined;
    try {
      loadConfig({
        LOGIN_LOCK_SECONDS: '600', LOGIN_LOCK_MAX_SECONDS: '60', LOG_LEVEL: 'loud', AUDIT_RETENTION_DAYS: '0', LOGIN_IP_MAX_FAILURES_PER_DAY: 'many',
        LOGIN_ACCOUNT_MAX_ATTEMPTS_PER_MINUTE: '0', PASSWORD_HASH_QUEUE_LENGTH: 'none', STATEFUL_REQUESTS_PER_IP_PER_MINUTE: '1.5',
      });
    } catch (caught) {
      error = caught as ConfigError;
    }
    expect(error!.problems).toEqual([
      'PASSWORD_HASH_QUEUE_LENGTH must be a whole number between 1 and 100000, got "none"',
      'LOGIN_IP_MAX_FAILURES_PER_DAY must be a whole number between 1 and 1000000, got "many"',
      'LOGIN_ACCOUNT_MAX_ATTEMPTS_PER_MINUTE must be a whole number between 1 and 1000000, got "0"',
      'LOGIN_LOCK_MAX_SECONDS (60) must be at least LOGIN_LOCK_SECONDS (600)',
      'STATEFUL_REQUESTS_PER_IP_PER_MINUTE must be a whole number between 1 and 1000000, got "1.5"',
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
      'AUDIT_RETENTION_DAYS must be a whole number between 1 and 36500, got "0"',
    ]);
  });

  it('reads TRUST_PROXY as off, one proxy or a number of proxies', () => {
    expect(loadConfig({}).trustedProxyCount).toBe(0);
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustedProxyCount).toBe(0);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustedProxyCount).toBe(1);
    expect(loadConfig({ TRUST_PROXY: '1' }).trustedProxyCount).toBe(1);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustedProxyCount).toBe(2);
    expect(() => loadConfig({ TRUST_PROXY: 'yes' })).toThrow(/TRUST_PROXY must be true, false or the number of proxies/);
    expect(() => loadConfig({ TRUST_PROXY: '11' })).toThrow(/TRUST_PROXY/);
  });

  it('reads UV_THREADPOOL_SIZE, which libuv would turn into one thread when it is not a number', () => {
    expect(loadConfig({}).threadPoolSize).toBeNull();
    expect(loadConfig({ UV_THREADPOOL_SIZE: '6' }).threadPoolSize).toBe(6);
    expect(() => loadConfig({ UV_THREADPOOL_SIZE: 'lots' })).toThrow(/UV_THREADPOOL_SIZE must be a whole number between 1 and 1024/);
    expect(() => loadConfig({ UV_THREADPOOL_SIZE: '-3' })).toThrow(/UV_THREADPOOL_SIZE/);
  });

  it('refuses an in-memory SQLite database, which would lose everything at restart', () => {
    for (const url of ['sqlite::memory:', 'sqlite:']) {
      expect(() => loadConfig({ DATABASE_URL: url })).toThrow(`DATABASE_URL must name a file (sqlite:PATH): an in-memory SQLite database is not supported, got "${url}"`);
    }
    expect(loadConfig({ DATABASE_URL: 'sqlite:/var/lib/latchkey/db.sqlite' }).databaseUrl).toBe('sqlite:/var/lib/latchkey/db.sqlite');
  });

  it('does not print database credentials in its error', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://admin:hunter2@db/x' })).toThrow(/^(?!.*hunter2)/s);
  });
});

describe('npm start with a bad environment', () => {
  it('prints one line and exits with code 1', async () => {
    const tsx = path.resolve('node_modules/.bin/tsx');
    const result = await run(tsx, ['src/main.ts'], { env: { ...process.env, PORT: 'x', SESSION_TTL: '0' } })
      .catch((error: { code: number; stderr: string }) => error);
    expect(result).toMatchObject({ code: 1 });
    const lines = (result as { stderr: string }).stderr.split('\n').filter((line) => line.startsWith('latchkey:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('PORT must be a whole number');
    expect(lines[0]).toContain('SESSION_TTL must be a whole number');
  });
});
