import { Secret, TOTP } from 'otpauth';

/**
 * RFC 6238 as every authenticator app expects it: HMAC-SHA-1, 6 digits, 30-second steps. The secret is 160 bits
 * (RFC 4226 §4 asks for at least 128, recommends 160).
 */
const parameters = { algorithm: 'SHA1', digits: 6, period: 30 } as const;
const secretBytes = 20;

export function newTotpSecret(): string {
  return new Secret({ size: secretBytes }).base32;
}

/** The otpauth:// URI an authenticator app reads from the QR code, labelled with the issuer's host and the email. */
export function totpUri(secret: string, issuerName: string, accountName: string): string {
  return new TOTP({ ...parameters, issuer: issuerName, label: accountName, secret: Secret.fromBase32(secret) }).toString();
}

/** The QR code of `uri` as an SVG element, rendered on the server (no script, nothing loaded from elsewhere). */
export async function qrCodeSvg(uri: string): Promise<string> {
  // Imported by the first enrolment rather than at start-up: only the enrolment page draws a QR code.
  const { default: QRCode } = await import('qrcode');
  return QRCode.toString(uri, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
}

/** A code as people type it: digits, perhaps with spaces; undefined when it cannot be a TOTP code at all. */
export function readTotpCode(typed: string): string | undefined {
  const digits = typed.replace(/\s/g, '');
  return /^\d{6}$/.test(digits) ? digits : undefined;
}

/**
 * The time step whose code `code` is, when it is the code of the step at `now` or of up to `driftSteps` steps
 * either side (RFC 6238 §5.2: a clock that drifts, a code typed as it changes); undefined otherwise.
 */
export function matchTotpStep(secret: string, code: string, now: number, driftSteps: number): number | undefined {
  const delta = TOTP.validate({ ...parameters, token: code, secret: Secret.fromBase32(secret), timestamp: now, window: driftSteps });
  return delta === null ? undefined : TOTP.counter({ period: parameters.period, timestamp: now }) + delta;
}
