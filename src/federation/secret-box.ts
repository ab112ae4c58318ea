import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createExclusive, ensureDir } from '../signing-keys.js';
import { UserFacingError } from '../user-facing-error.js';

/** The file in KEYS_DIR that holds the key the upstream client secrets are encrypted with. */
export const connectionSecretKeyFile = 'connection-secret-key.json';

const version = 'v1';
const ivBytes = 12;
const tagBytes = 16;

export class SecretBoxError extends UserFacingError {
  constructor(message: string) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

/**
 * Seals the upstream client secrets with AES-256-GCM (node:crypto) under a key kept in KEYS_DIR, so a database dump
 * alone does not reveal them. The key is made on first use (mode 0600, like the signing keys; of processes starting
 * together one writes it). Each secret is bound to its connection id as additional authenticated data: a ciphertext
 * copied onto another connection's row does not decrypt. Lost key: every connection's secret must be set again.
 */
export function createSecretBox(keysDir: string) {
  let key: Buffer | undefined;

  function loadKey(): Buffer {
    if (key) return key;
    ensureDir(keysDir);
    const file = path.join(keysDir, connectionSecretKeyFile);
    createExclusive(file, JSON.stringify({ key: randomBytes(32).toString('base64url') }));
    const stored = Buffer.from((JSON.parse(fs.readFileSync(file, 'utf8')) as { key: string }).key, 'base64url');
    if (stored.length !== 32) throw new SecretBoxError(`${file} does not hold a 256-bit key`);
    key = stored;
    return key;
  }

  const context = (connectionId: string) => Buffer.from(`latchkey-connection-secret:${connectionId}`);

  return {
    seal(connectionId: string, secret: string): string {
      const iv = randomBytes(ivBytes);
      const cipher = createCipheriv('aes-256-gcm', loadKey(), iv, { authTagLength: tagBytes });
      cipher.setAAD(context(connectionId));
      const sealed = Buffer.concat([iv, cipher.update(secret, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `${version}.${sealed.toString('base64url')}`;
    },
    open(connectionId: string, sealed: string): string {
      const [tag, body] = sealed.split('.');
      const bytes = Buffer.from(body ?? '', 'base64url');
      if (tag !== version || bytes.length < ivBytes + tagBytes) throw new SecretBoxError(`the client secret of connection ${connectionId} is not readable`);
      const decipher = createDecipheriv('aes-256-gcm', loadKey(), bytes.subarray(0, ivBytes), { authTagLength: tagBytes });
      decipher.setAAD(context(connectionId));
      decipher.setAuthTag(bytes.subarray(bytes.length - tagBytes));
      try {
        return Buffer.concat([decipher.update(bytes.subarray(ivBytes, bytes.length - tagBytes)), decipher.final()]).toString('utf8');
      } catch {
        throw new SecretBoxError(`the client secret of connection ${connectionId} does not decrypt with the key in KEYS_DIR (${connectionSecretKeyFile}); set it again`);
      }
    },
  };
}

export type SecretBox = ReturnType<typeof createSecretBox>;
