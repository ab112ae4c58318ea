import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { smtpOptions } from '../src/mail/transport.js';

const production = { NODE_ENV: 'production', ISSUER: 'https://id.example.com' };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    return (error as ConfigError).problems;
  }
  return [];
}

describe('mail settings', () => {
  it('defaults: no SMTP (mail to the log), reset on, registration closed, verified email required for sign-ups', () => {
    expect(loadConfig({}).mail).toMatchObject({
      smtpUrl: null, isPasswordResetEnabled: true, registration: 'closed', requireVerifiedEmail: true,
      passwordResetTtlSeconds: 1800, inviteTtlSeconds: 7 * 86400, inviteSignInTtlSeconds: 300, emailVerificationTtlSeconds: 86400, resetsPerAddressPerHour: 3,
    });
  });

  it('in production without SMTP_URL, turns reset off and refuses the features that need mail at start-up', () => {
    expect(loadConfig(production).mail.isPasswordResetEnabled).toBe(false);
    expect(problemsOf({ ...production, PASSWORD_RESET: 'true', REGISTRATION: 'open' })).toEqual([
      'PASSWORD_RESET=true needs SMTP_URL when NODE_ENV=production',
      'REGISTRATION=open needs SMTP_URL when NODE_ENV=production',
    ]);
    const withSmtp = loadConfig({ ...production, SMTP_URL: 'smtps://u:p@smtp.example.com', EMAIL_FROM: 'Login <login@example.com>', REGISTRATION: 'open' });
    expect(withSmtp.mail).toMatchObject({ isPasswordResetEnabled: true, registration: 'open' });
  });

  it('reports a bad SMTP_URL without echoing its password, a missing or malformed EMAIL_FROM, and bad values', () => {
    const problems = problemsOf({ SMTP_URL: 'http://user:hunter2@smtp.example.com', REGISTRATION: 'maybe', MAIL_RETRY_BASE_SECONDS: '600', MAIL_RETRY_MAX_SECONDS: '60' });
    expect(problems.join('\n')).not.toContain('hunter2');
    expect(problems).toEqual(expect.arrayContaining([
      'SMTP_URL must look like smtp://user:password@host:587 or smtps://user:password@host:465',
      'REGISTRATION must be open or closed, got "maybe"',
      expect.stringMatching(/^EMAIL_FROM is required/),
      'MAIL_RETRY_MAX_SECONDS (60) must be at least MAIL_RETRY_BASE_SECONDS (600)',
    ]));
    expect(problemsOf({ SMTP_URL: 'smtps://h?tls=false', EMAIL_FROM: 'a@b.c' })).toEqual(['SMTP_URL takes only ?tls=false, and only with smtp:// (a local relay without STARTTLS)']);
    expect(problemsOf({ EMAIL_FROM: 'Login <login@example.com>\r\nBcc: x@evil.example' })).toEqual([expect.stringMatching(/^EMAIL_FROM must be/)]);
    expect(loadConfig({ REGISTRATION_EMAIL_DOMAINS: ' Example.com, @example.org ,' }).mail.registrationEmailDomains).toEqual(['example.com', 'example.org']);
  });

  it('requires STARTTLS on smtp:// unless ?tls=false, and TLS from the start on smtps://', () => {
    expect(smtpOptions('smtp://user:p%40ss@smtp.example.com:587', 1000)).toMatchObject({ host: 'smtp.example.com', port: 587, secure: false, requireTLS: true, ignoreTLS: false, auth: { user: 'user', pass: 'p@ss' } });
    expect(smtpOptions('smtps://smtp.example.com', 1000)).toMatchObject({ port: 465, secure: true, requireTLS: false, auth: undefined });
    expect(smtpOptions('smtp://localhost:25?tls=false', 1000)).toMatchObject({ port: 25, requireTLS: false, ignoreTLS: true });
  });
});
