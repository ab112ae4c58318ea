import type { Config } from '../config.js';
import { readSigningKeys, rotateSigningKey, type StoredSigningKey } from '../signing-keys.js';
import { table, type Output } from './output.js';

const publicKey = (key: StoredSigningKey, index: number) => ({
  kid: key.jwk.kid,
  alg: key.jwk.alg,
  createdAt: new Date(key.createdAt).toISOString(),
  isSigning: index === 0,
});

export const keyCommands = {
  list: {
    options: {},
    async run(config: Config, out: Output) {
      const keys = readSigningKeys(config.keysDir).map(publicKey);
      out.result(keys, table(['KID', 'ALG', 'CREATED', 'STATUS'], keys.map((k) => [k.kid, k.alg, k.createdAt, k.isSigning ? 'signing' : 'verify only'])));
    },
  },
  rotate: {
    options: {},
    async run(config: Config, out: Output) {
      const key = await rotateSigningKey(config.keysDir);
      out.result(publicKey(key, 0), [
        `new signing key ${key.jwk.kid}; running servers switch to it within ${config.keysReloadIntervalSeconds}s (KEYS_RELOAD_INTERVAL)`,
      ]);
    },
  },
} as const;
