import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

/** A private RS256 signing key as oidc-provider takes it: `kid` is its RFC 7638 thumbprint. */
export type SigningKey = JWK & { kid: string; alg: 'RS256'; use: 'sig' };

/** `activatesAt`: from then on the key signs; before, it is only published, so every instance knows it first. */
export type StoredSigningKey = { sequence: number; createdAt: number; activatesAt: number; jwk: SigningKey };

export type CookieSecrets = { cookieKeys: string[]; csrfKey: string };

const signingKeyFile = /^signing-key-(\d{6})\.json$/;

/**
 * Writes a file only if it does not exist yet, atomically: the content goes to a private temp file that is then
 * hard-linked into place, so concurrent processes never see a half-written file and only one of them wins.
 */
function createExclusive(file: string, content: string): boolean {
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  fs.writeFileSync(temp, content, { mode: 0o600 });
  try {
    fs.linkSync(temp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

/** The keys directory is private to the service user, also when it already existed (a checkout's `keys/` is 0755). */
function ensureDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((fs.statSync(dir).mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

/** All signing keys, newest first: oidc-provider signs with the first key that fits the algorithm. */
export function readSigningKeys(dir: string): StoredSigningKey[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((name) => signingKeyFile.test(name))
    .map((name) => {
      const stored = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as StoredSigningKey;
      return { ...stored, activatesAt: stored.activatesAt ?? stored.createdAt };
    })
    .sort((a, b) => b.sequence - a.sequence);
}

/**
 * The keys in the order oidc-provider needs (it signs with the first): the newest key already active, then all
 * others, newest first. With no active key yet, the oldest key signs.
 */
export function orderForSigning(keys: StoredSigningKey[], now: number): StoredSigningKey[] {
  const signing = keys.find((key) => key.activatesAt <= now) ?? keys[keys.length - 1];
  return signing ? [signing, ...keys.filter((key) => key !== signing)] : [];
}

async function generateSigningKey(): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

/**
 * Adds a new signing key that signs once `activationDelaySeconds` have passed (published in the JWKS at once);
 * older keys stay published so tokens already issued keep verifying.
 */
export async function rotateSigningKey(dir: string, options: { activationDelaySeconds?: number; now?: number } = {}): Promise<StoredSigningKey> {
  ensureDir(dir);
  const now = options.now ?? Date.now();
  const jwk = await generateSigningKey();
  for (;;) {
    const sequence = (readSigningKeys(dir)[0]?.sequence ?? 0) + 1;
    const stored: StoredSigningKey = { sequence, createdAt: now, activatesAt: now + (options.activationDelaySeconds ?? 0) * 1000, jwk };
    const file = path.join(dir, `signing-key-${String(sequence).padStart(6, '0')}.json`);
    if (createExclusive(file, JSON.stringify(stored, null, 2))) return stored;
  }
}

/** Creates the first signing key when the directory has none. */
export async function ensureSigningKey(dir: string): Promise<StoredSigningKey[]> {
  ensureDir(dir);
  const keys = readSigningKeys(dir);
  if (keys.length > 0) return keys;
  const now = Date.now();
  const stored: StoredSigningKey = { sequence: 1, createdAt: now, activatesAt: now, jwk: await generateSigningKey() };
  createExclusive(path.join(dir, 'signing-key-000001.json'), JSON.stringify(stored, null, 2));
  return readSigningKeys(dir);
}

/** Secrets for signed cookies and CSRF tokens, created on first start and kept so restarts log nobody out. */
export function ensureCookieSecrets(dir: string): CookieSecrets {
  ensureDir(dir);
  const file = path.join(dir, 'cookie-secrets.json');
  const fresh: CookieSecrets = {
    cookieKeys: [randomBytes(32).toString('base64url')],
    csrfKey: randomBytes(32).toString('base64url'),
  };
  createExclusive(file, JSON.stringify(fresh, null, 2));
  return JSON.parse(fs.readFileSync(file, 'utf8')) as CookieSecrets;
}

/** Identifies the key set and which key signs now: when it changes, the provider must be rebuilt. */
export function signingKeysFingerprint(keys: StoredSigningKey[], now: number): string {
  return `${orderForSigning(keys, now)[0]?.jwk.kid}:${keys.map((key) => key.jwk.kid).join(',')}`;
}
