import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

/**
 * A fresh test server in a process of its own (which modules are loaded is a property of the process): what it has
 * loaded once it answers, then after the first password check, passkey ceremony and QR code. Each of these loads
 * CommonJS files (the list itself, the WebAuthn helpers' ASN.1 parser, qrcode), so the require cache shows them.
 */
const script = `
import { createRequire } from 'node:module';
import { startTestServer } from './test/support/server.ts';
import { qrCodeSvg } from './src/mfa/totp.ts';
const cache = createRequire(import.meta.url).cache;
const loaded = () => ({
  commonPasswords: Object.keys(cache).some((file) => file.includes('/node_modules/@zxcvbn-ts/language-common/')),
  webAuthn: Object.keys(cache).some((file) => file.includes('/node_modules/@peculiar/asn1-schema/')),
  qrCode: Object.keys(cache).some((file) => file.includes('/node_modules/qrcode/')),
});
const server = await startTestServer();
const discovery = await fetch(server.issuer + '/.well-known/openid-configuration');
const atStart = loaded();
const refused = await server.services.accounts.passwordProblem('Password1');
const options = await server.services.passkeysFor(server.issuer).authenticationOptions('sign-in', 'interaction-1');
const svg = await qrCodeSvg('otpauth://totp/Latchkey:ada%40example.com?secret=JBSWY3DPEHPK3PXP');
const afterUse = loaded();
await server.close();
console.log(JSON.stringify({ status: discovery.status, atStart, refused, challenge: typeof options.challenge, svg: svg.startsWith('<svg'), afterUse }));
`;

describe('the modules only rare paths need', () => {
  it('are not loaded by a server that has only started, and work on their first use', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: process.env });
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(report).toEqual({
      status: 200,
      atStart: { commonPasswords: false, webAuthn: false, qrCode: false },
      refused: { key: 'account_rules.password.common' },
      challenge: 'string',
      svg: true,
      afterUse: { commonPasswords: true, webAuthn: true, qrCode: true },
    });
  }, 60_000);
});
