import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Config } from './config.js';
import { UserFacingError } from './user-facing-error.js';

/** A private RS256 signing key as oidc-provider takes it: `kid` is its RFC 7638 thumbprint. */
export type SigningKey = JWK & { kid: string; alg: 'RS256'; use: 'sig' };

/** `activatesAt`: from then on the key signs; before, it is only published, so every instance knows it first. */
export type StoredSigningKey = { sequence: number; createdAt: number; activatesAt: number; jwk: SigningKey };

/**
 * What is left of a key that was retired (`keys retire`) or aged out: its file without the key, so `keys list` can
 * tell what happened to it and the sequence number is never used again.
 */
export type RetiredSigningKey = {
  sequence: number;
  kid: string;
  alg: string;
  createdAt: number;
  activatesAt: number;
  retiredAt: number;
  reason: 'retired' | 'expired';
};

export type CookieSecrets = { cookieKeys: string[]; csrfKey: string };

/** A key operation the operator asked for that cannot be done; the CLI prints the message. */
export class SigningKeyError extends UserFacingError {
  constructor(message: string) {
    super(message);
    this.name = 'SigningKeyError';
  }
}

const signingKeyFile = /^signing-key-(\d{6})\.json$/;
const fileOf = (dir: string, sequence: number) => path.join(dir, `signing-key-${String(sequence).padStart(6, '0')}.json`);
const tempNameOf = (file: string) => `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;

/**
 * Writes a file only if it does not exist yet, atomically: the content goes to a private temp file that is then
 * hard-linked into place, so concurrent processes never see a half-written file and only one of them wins.
 */
export function createExclusive(file: string, content: string): boolean {
  const temp = tempNameOf(file);
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

/** Replaces a file atomically (rename): a reader sees the old content or the new, never a mix. */
function replaceFile(file: string, content: string): void {
  const temp = tempNameOf(file);
  fs.writeFileSync(temp, content, { mode: 0o600 });
  fs.renameSync(temp, file);
}

/** The keys directory is private to the service user, also when it already existed (a checkout's `keys/` is 0755). */
export function ensureDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((fs.statSync(dir).mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

/** Every key file, live or retired, newest first. */
function readKeyFiles(dir: string): (StoredSigningKey | RetiredSigningKey)[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((name) => signingKeyFile.test(name))
    .map((name) => {
      const stored = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as StoredSigningKey | RetiredSigningKey;
      return { ...stored, activatesAt: stored.activatesAt ?? stored.createdAt };
    })
    .sort((a, b) => b.sequence - a.sequence);
}

const isLive = (key: StoredSigningKey | RetiredSigningKey): key is StoredSigningKey => 'jwk' in key;

/** All signing keys that still have their private key (not retired), newest first. */
export function readSigningKeys(dir: string): StoredSigningKey[] {
  return readKeyFiles(dir).filter(isLive);
}

/** The records of retired and aged-out keys, newest first. */
export function readRetiredKeys(dir: string): RetiredSigningKey[] {
  return readKeyFiles(dir).filter((key): key is RetiredSigningKey => !isLive(key));
}

/**
 * The keys in the order oidc-provider needs (it signs with the first): the newest key already active, then all
 * others, newest first. With no active key yet, the oldest key signs.
 */
export function orderForSigning(keys: StoredSigningKey[], now: number): StoredSigningKey[] {
  const signing = keys.find((key) => key.activatesAt <= now) ?? keys[keys.length - 1];
  return signing ? [signing, ...keys.filter((key) => key !== signing)] : [];
}

/** oidc-provider gives logout tokens a fixed lifetime of 120 seconds (lib/models/id_token.js, use `logout`). */
const logoutTokenLifetimeSeconds = 120;

type TokenLifetimes = Pick<Config, 'idTokenTtlSeconds' | 'accessTokenTtlSeconds' | 'sessionTtlSeconds' | 'keysReloadIntervalSeconds'>;

/**
 * How long a key stays published after a newer key took over signing: an instance may go on signing with it for
 * up to KEYS_RELOAD_INTERVAL, and what it signed last must verify for as long as it is used. That is the longest of
 * the lifetimes of everything signed with these keys (ID tokens, JWT access tokens, logout tokens) and SESSION_TTL:
 * an app sends the ID token it got at sign-in as `id_token_hint` when the user logs out, which Latchkey accepts
 * after the token's `exp` (RP-Initiated Logout 1.0 §2) but only while the key that signed it is published.
 */
export function signingKeyRetentionMs(config: TokenLifetimes): number {
  const longestUseSeconds = Math.max(config.idTokenTtlSeconds, config.accessTokenTtlSeconds, logoutTokenLifetimeSeconds, config.sessionTtlSeconds);
  return (config.keysReloadIntervalSeconds + longestUseSeconds) * 1000;
}

/** When `key` stopped signing (or was skipped): the earliest activation of a newer key; Infinity while none. */
function supersededAt(key: StoredSigningKey, keys: StoredSigningKey[]): number {
  return Math.min(...keys.filter((other) => other.sequence > key.sequence).map((other) => other.activatesAt), Infinity);
}

/** The moment `key` drops out of the JWKS (Infinity while it signs or no newer key has activated). */
export function publishedUntil(key: StoredSigningKey, keys: StoredSigningKey[], retentionMs: number): number {
  return supersededAt(key, keys) + retentionMs;
}

/**
 * The keys a server loads at `now`, in signing order: every live key except those that stopped signing more than
 * `retentionMs` ago. Whatever is not in this list is neither published in the JWKS nor accepted by Latchkey itself.
 */
export function servedSigningKeys(keys: StoredSigningKey[], now: number, retentionMs: number): StoredSigningKey[] {
  return orderForSigning(keys.filter((key) => now <= publishedUntil(key, keys, retentionMs)), now);
}

/** Identifies the served keys and which of them signs (the first): when it changes, the provider must be rebuilt. */
export function signingKeysFingerprint(served: StoredSigningKey[]): string {
  return served.map((key) => key.jwk.kid).join(',');
}

async function generateSigningKey(): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

/** Retired files count too: a sequence number, and so a file name, is never reused. */
const nextSequence = (dir: string) => (readKeyFiles(dir)[0]?.sequence ?? 0) + 1;

/**
 * Adds a new signing key that signs once `activationDelaySeconds` have passed (published in the JWKS at once);
 * older keys stay published until they age out (see servedSigningKeys), so tokens already issued keep verifying.
 */
export async function rotateSigningKey(dir: string, options: { activationDelaySeconds?: number; now?: number } = {}): Promise<StoredSigningKey> {
  ensureDir(dir);
  const now = options.now ?? Date.now();
  const jwk = await generateSigningKey();
  for (;;) {
    const sequence = nextSequence(dir);
    const stored: StoredSigningKey = { sequence, createdAt: now, activatesAt: now + (options.activationDelaySeconds ?? 0) * 1000, jwk };
    if (createExclusive(fileOf(dir, sequence), JSON.stringify(stored, null, 2))) return stored;
  }
}

/** Creates the first signing key when the directory has none; of processes starting together, one creates it. */
export async function ensureSigningKey(dir: string): Promise<StoredSigningKey[]> {
  ensureDir(dir);
  if (readSigningKeys(dir).length > 0) return readSigningKeys(dir);
  const now = Date.now();
  const sequence = nextSequence(dir);
  const stored: StoredSigningKey = { sequence, createdAt: now, activatesAt: now, jwk: await generateSigningKey() };
  createExclusive(fileOf(dir, sequence), JSON.stringify(stored, null, 2));
  return readSigningKeys(dir);
}

/** Overwrites a key's file with its record: the private key is gone from the disk. */
function writeRetired(dir: string, key: StoredSigningKey, now: number, reason: RetiredSigningKey['reason']): RetiredSigningKey {
  const { sequence, createdAt, activatesAt, jwk } = key;
  const retired: RetiredSigningKey = { sequence, kid: jwk.kid, alg: jwk.alg, createdAt, activatesAt, retiredAt: now, reason };
  replaceFile(fileOf(dir, sequence), JSON.stringify(retired, null, 2));
  return retired;
}

/**
 * Withdraws a key at once: its private key is deleted and no server loads it again, so neither the JWKS nor
 * Latchkey itself (`id_token_hint`) accepts what it signed. The key that signs now can be retired only when a newer
 * key exists; that one then signs from `now` (before the old key goes, so no older key ever signs again).
 */
export function retireSigningKey(
  dir: string,
  kid: string,
  options: { now: number; retentionMs: number },
): { retired: RetiredSigningKey; takesOver?: StoredSigningKey } {
  const { now } = options;
  const files = readKeyFiles(dir);
  const key = files.find((file) => (isLive(file) ? file.jwk.kid : file.kid) === kid);
  if (!key) throw new SigningKeyError(`no signing key with kid ${kid} in ${dir} (KEYS_DIR)`);
  if (!isLive(key)) {
    const what = key.reason === 'retired' ? 'retired' : 'removed when it aged out';
    throw new SigningKeyError(`key ${kid} was already ${what} at ${new Date(key.retiredAt).toISOString()}`);
  }
  const live = files.filter(isLive);
  const [signing] = servedSigningKeys(live, now, options.retentionMs);
  let takesOver: StoredSigningKey | undefined;
  if (key === signing) {
    const [newest] = live;
    if (newest === key) {
      const why = live.length === 1 ? 'it is the only signing key' : 'it signs now and no newer key can take over';
      throw new SigningKeyError(`refusing to retire ${kid}: ${why}; run "latchkey keys rotate --now" first`);
    }
    takesOver = { ...newest, activatesAt: Math.min(newest.activatesAt, now) };
    replaceFile(fileOf(dir, newest.sequence), JSON.stringify(takesOver, null, 2));
  }
  return { retired: writeRetired(dir, key, now, 'retired'), takesOver };
}

/** Deletes the private keys of keys no server loads any more at `now` (aged out); returns their records. */
export function removeAgedOutKeys(dir: string, options: { now: number; retentionMs: number }): RetiredSigningKey[] {
  const live = readSigningKeys(dir);
  const served = new Set(servedSigningKeys(live, options.now, options.retentionMs));
  return live.filter((key) => !served.has(key)).map((key) => writeRetired(dir, key, options.now, 'expired'));
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
