import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

/** A private RS256 signing key as oidc-provider takes it: `kid` is its RFC 7638 thumbprint. */
export type SigningKey = JWK & { kid: string; alg: 'RS256'; use: 'sig' };

export type StoredSigningKey = { sequence: number; createdAt: number; jwk: SigningKey };

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

function ensureDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** All signing keys, newest first: oidc-provider signs with the first key that fits the algorithm. */
export function readSigningKeys(dir: string): StoredSigningKey[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((name) => signingKeyFile.test(name))
    .map((name) => JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as StoredSigningKey)
    .sort((a, b) => b.sequence - a.sequence);
}

async function generateSigningKey(): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

/** Adds a new signing key that signs from now on; older keys stay published so issued tokens keep verifying. */
export async function rotateSigningKey(dir: string, now = Date.now()): Promise<StoredSigningKey> {
  ensureDir(dir);
  const jwk = await generateSigningKey();
  for (;;) {
    const sequence = (readSigningKeys(dir)[0]?.sequence ?? 0) + 1;
    const stored: StoredSigningKey = { sequence, createdAt: now, jwk };
    const file = path.join(dir, `signing-key-${String(sequence).padStart(6, '0')}.json`);
    if (createExclusive(file, JSON.stringify(stored, null, 2))) return stored;
  }
}

/** Creates the first signing key when the directory has none. */
export async function ensureSigningKey(dir: string): Promise<StoredSigningKey[]> {
  ensureDir(dir);
  const keys = readSigningKeys(dir);
  if (keys.length > 0) return keys;
  const stored: StoredSigningKey = { sequence: 1, createdAt: Date.now(), jwk: await generateSigningKey() };
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

/** A cheap fingerprint of the key files, to notice another process's rotation without re-reading every key. */
export function signingKeysFingerprint(dir: string): string {
  if (!fs.existsSync(dir)) return '';
  return fs.readdirSync(dir).filter((name) => signingKeyFile.test(name)).sort().join(',');
}
