import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** AES-256-GCM (NIST SP 800-38D): a 96-bit random nonce per message, a 128-bit tag. */
const algorithm = 'aes-256-gcm';
const keyBytes = 32;
const nonceBytes = 12;
const format = 'v1';

export class SecretBoxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

/**
 * Reads the key file, or creates it (32 random bytes, base64url, mode 0600) when there is none. Processes that start
 * together race through a private temp file hard-linked into place: one key wins, every process reads that one.
 */
function loadOrCreateKey(file: string): Buffer {
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    fs.writeFileSync(temp, `${randomBytes(keyBytes).toString('base64url')}\n`, { mode: 0o600 });
    try {
      fs.linkSync(temp, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      fs.rmSync(temp, { force: true });
    }
  }
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64url');
  if (key.length !== keyBytes) throw new SecretBoxError(`${file} must hold a ${keyBytes}-byte key in base64url`);
  return key;
}

/**
 * Encryption at rest for small secrets kept in the database (TOTP secrets; any secret a module must be able to read
 * back). The key is a file in KEYS_DIR, so a copy of the database alone reveals nothing. `context` is authenticated
 * with the ciphertext (GCM's additional data): a sealed value copied to another row (another account's factor)
 * does not open there. The key is read on first use.
 */
export function createSecretBox(keyFile: string) {
  let key: Buffer | undefined;
  const currentKey = () => (key ??= loadOrCreateKey(keyFile));
  return {
    seal(plaintext: string, context: string): string {
      const nonce = randomBytes(nonceBytes);
      const cipher = createCipheriv(algorithm, currentKey(), nonce);
      cipher.setAAD(Buffer.from(context));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `${format}.${nonce.toString('base64url')}.${body.toString('base64url')}`;
    },
    /** The plaintext; throws SecretBoxError when the value was not sealed under this key and context. */
    open(sealed: string, context: string): string {
      const [version, nonce, body] = sealed.split('.');
      if (version !== format || !nonce || !body) throw new SecretBoxError('not a sealed value');
      const bytes = Buffer.from(body, 'base64url');
      try {
        const decipher = createDecipheriv(algorithm, currentKey(), Buffer.from(nonce, 'base64url'));
        decipher.setAAD(Buffer.from(context));
        decipher.setAuthTag(bytes.subarray(bytes.length - 16));
        return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]).toString('utf8');
      } catch {
        throw new SecretBoxError('the sealed value does not open with this key and context');
      }
    },
  };
}

export type SecretBox = ReturnType<typeof createSecretBox>;
