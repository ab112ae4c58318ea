import type { Config } from '../config.js';
import { orderForSigning, readSigningKeys, rotateSigningKey, type StoredSigningKey } from '../signing-keys.js';
import { table, type Output, type Values } from './output.js';

/** `signing` signs now; `pending` is newer and will sign from activatesAt; `verify only` has been superseded. */
function keyStatus(key: StoredSigningKey, signing: StoredSigningKey | undefined): string {
  if (!signing || key === signing) return 'signing';
  return key.sequence > signing.sequence ? 'pending' : 'verify only';
}

const publicKey = (key: StoredSigningKey, status: string) => ({
  kid: key.jwk.kid,
  alg: key.jwk.alg,
  createdAt: new Date(key.createdAt).toISOString(),
  activatesAt: new Date(key.activatesAt).toISOString(),
  status,
});

export const keyCommands = {
  list: {
    options: {},
    async run(config: Config, out: Output, _values: Values) {
      const stored = readSigningKeys(config.keysDir);
      const [signing] = orderForSigning(stored, Date.now());
      const keys = stored.map((key) => publicKey(key, keyStatus(key, signing)));
      out.result(keys, table(['KID', 'ALG', 'CREATED', 'SIGNS FROM', 'STATUS'], keys.map((k) => [k.kid, k.alg, k.createdAt, k.activatesAt, k.status])));
    },
  },
  rotate: {
    options: { now: { type: 'boolean' } },
    async run(config: Config, out: Output, values: Values) {
      // --now skips the activation delay: for a compromised key, at the price of a short window in which an
      // instance that has not reloaded yet cannot verify tokens signed with the new key.
      const activationDelaySeconds = values.now === true ? 0 : config.keysActivationDelaySeconds;
      const key = await rotateSigningKey(config.keysDir, { activationDelaySeconds });
      out.result(publicKey(key, key.activatesAt > Date.now() ? 'pending' : 'signing'), [
        `new key ${key.jwk.kid} is published now and signs from ${new Date(key.activatesAt).toISOString()}`,
        `running servers pick it up within ${config.keysReloadIntervalSeconds}s (KEYS_RELOAD_INTERVAL)`,
      ]);
    },
  },
} as const;
