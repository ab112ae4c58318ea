import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { createSecretBox, SecretBoxError } from '../src/secret-box.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-secret-box-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the secret box', () => {
  it('creates its key file private to the service user and opens what it sealed, in the same context only', () => {
    const file = path.join(dir, 'keys', 'box.key');
    const box = createSecretBox(file);
    const sealed = box.seal('JBSWY3DPEHPK3PXP', 'second-factor:alice:1');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(sealed).not.toContain('JBSWY3DPEHPK3PXP');
    expect(box.open(sealed, 'second-factor:alice:1')).toBe('JBSWY3DPEHPK3PXP');
    // Copied to another account's row: it does not open.
    expect(() => box.open(sealed, 'second-factor:mallory:1')).toThrow(SecretBoxError);
    // Tampered with: it does not open.
    const tampered = `${sealed.slice(0, -2)}${sealed.endsWith('A') ? 'B' : 'A'}${sealed.slice(-1)}`;
    expect(() => box.open(tampered, 'second-factor:alice:1')).toThrow(SecretBoxError);
    expect(() => box.open('not sealed', 'second-factor:alice:1')).toThrow(SecretBoxError);
    // Another process with the same key file opens it; another key does not.
    expect(createSecretBox(file).open(sealed, 'second-factor:alice:1')).toBe('JBSWY3DPEHPK3PXP');
    expect(() => createSecretBox(path.join(dir, 'other.key')).open(sealed, 'second-factor:alice:1')).toThrow(SecretBoxError);
  });

  it('seals the same secret differently every time (a fresh nonce)', () => {
    const box = createSecretBox(path.join(dir, 'nonce.key'));
    expect(box.seal('same', 'context')).not.toBe(box.seal('same', 'context'));
  });

  it('refuses a key file that does not hold a 32-byte key', () => {
    const file = path.join(dir, 'short.key');
    fs.writeFileSync(file, 'c2hvcnQ\n', { mode: 0o600 });
    expect(() => createSecretBox(file).seal('x', 'y')).toThrow(/32-byte key/);
  });
});

describe('MFA settings', () => {
  it('default to optional with one step of drift and report bad values together', () => {
    expect(loadConfig({}).mfa).toEqual({ policy: 'optional', totpDriftSteps: 1, passkeyTimeoutSeconds: 300 });
    expect(loadConfig({ MFA: 'required', MFA_TOTP_DRIFT_STEPS: '0' }).mfa).toEqual({ policy: 'required', totpDriftSteps: 0, passkeyTimeoutSeconds: 300 });
    let error: ConfigError | undefined;
    try {
      loadConfig({ MFA: 'sometimes', MFA_TOTP_DRIFT_STEPS: '5' });
    } catch (caught) {
      error = caught as ConfigError;
    }
    expect(error?.problems).toEqual(['MFA must be optional or required, got "sometimes"', 'MFA_TOTP_DRIFT_STEPS must be 0, 1 or 2, got "5"']);
  });
});
