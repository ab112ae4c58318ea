import path from 'node:path';
import { createSecretBox, SecretBoxError as SealError } from '../secret-box.js';
import { UserFacingError } from '../user-facing-error.js';

/** The file in KEYS_DIR that holds the key the upstream client secrets are encrypted with. */
export const connectionSecretKeyFile = 'connection-secrets.key';

export class SecretBoxError extends UserFacingError {
  constructor(message: string) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

/**
 * The upstream client secrets, sealed with AES-256-GCM (src/secret-box.ts) under a key of their own in KEYS_DIR, so
 * a database dump alone does not reveal them. Each secret is bound to its connection id: a ciphertext copied onto
 * another connection's row does not open. Lost key: every connection's secret must be set again.
 */
export function createConnectionSecretBox(keysDir: string) {
  const box = createSecretBox(path.join(keysDir, connectionSecretKeyFile));
  const context = (connectionId: string) => `latchkey-connection-secret:${connectionId}`;
  return {
    seal: (connectionId: string, secret: string): string => box.seal(secret, context(connectionId)),
    open(connectionId: string, sealed: string): string {
      try {
        return box.open(sealed, context(connectionId));
      } catch (error) {
        if (!(error instanceof SealError)) throw error;
        throw new SecretBoxError(`the client secret of connection ${connectionId} does not decrypt with the key in KEYS_DIR (${connectionSecretKeyFile}); set it again`);
      }
    },
  };
}

export type ConnectionSecretBox = ReturnType<typeof createConnectionSecretBox>;
