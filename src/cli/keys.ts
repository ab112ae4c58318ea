import type { Config } from '../config.js';
import type { Services } from '../services.js';
import {
  publishedUntil, readRetiredKeys, readSigningKeys, removeAgedOutKeys, retireSigningKey, rotateSigningKey, servedSigningKeys,
  signingKeyRetentionMs, type RetiredSigningKey, type StoredSigningKey,
} from '../signing-keys.js';
import { actor, IncompleteError, required, table, type Output, type Values } from './output.js';

const isoTime = (epochMs: number) => (Number.isFinite(epochMs) ? new Date(epochMs).toISOString() : null);

type KeyFacts = { kid: string; alg: string; createdAt: number; activatesAt: number };

/**
 * `signing` signs now; `pending` is newer and will sign from activatesAt; `verify only` has been superseded and is
 * published until `publishedUntil`; `expired` has aged out; `retired` was withdrawn with `keys retire`.
 */
const keyView = (key: KeyFacts, status: string, publishedUntil: number | null) => ({
  kid: key.kid,
  alg: key.alg,
  createdAt: isoTime(key.createdAt),
  activatesAt: isoTime(key.activatesAt),
  status,
  publishedUntil: publishedUntil === null ? null : isoTime(publishedUntil),
});

const factsOf = (key: StoredSigningKey): KeyFacts => ({ ...key, kid: key.jwk.kid, alg: key.jwk.alg });

function liveKey(key: StoredSigningKey, keys: StoredSigningKey[], served: StoredSigningKey[], retentionMs: number) {
  const [signing] = served;
  if (key === signing) return keyView(factsOf(key), 'signing', null);
  if (!served.includes(key)) return keyView(factsOf(key), 'expired', publishedUntil(key, keys, retentionMs));
  if (key.sequence > signing.sequence) return keyView(factsOf(key), 'pending', null);
  return keyView(factsOf(key), 'verify only', publishedUntil(key, keys, retentionMs));
}

const retiredKey = (key: RetiredSigningKey) => keyView(key, key.reason, key.retiredAt);

/** Aged-out keys are only dropped from what servers load; the key commands that write also delete their files' keys. */
function removeAgedOut(config: Config, now: number): string[] {
  return removeAgedOutKeys(config.keysDir, { now, retentionMs: signingKeyRetentionMs(config) })
    .map((key) => `key ${key.kid} aged out (no longer published); its private key was deleted`);
}

const reloadLine = (config: Config) =>
  `running servers pick this up within ${config.keysReloadIntervalSeconds}s (KEYS_RELOAD_INTERVAL), or at once on SIGHUP`;

export const keyCommands = {
  list: {
    options: {},
    async run(config: Config, out: Output) {
      const retentionMs = signingKeyRetentionMs(config);
      const live = readSigningKeys(config.keysDir);
      const served = servedSigningKeys(live, Date.now(), retentionMs);
      const keys = [
        ...live.map((key) => ({ sequence: key.sequence, view: liveKey(key, live, served, retentionMs) })),
        ...readRetiredKeys(config.keysDir).map((key) => ({ sequence: key.sequence, view: retiredKey(key) })),
      ].sort((a, b) => b.sequence - a.sequence).map((key) => key.view);
      out.result(keys, table(['KID', 'ALG', 'CREATED', 'SIGNS FROM', 'STATUS', 'PUBLISHED UNTIL'],
        keys.map((k) => [k.kid, k.alg, k.createdAt ?? '', k.activatesAt ?? '', k.status, k.publishedUntil ?? '-'])));
    },
  },
  rotate: {
    options: { now: { type: 'boolean' } },
    async run(config: Config, out: Output, values: Values) {
      // --now skips the activation delay: for a compromised key, at the price of a short window in which an
      // instance that has not reloaded yet cannot verify tokens signed with the new key.
      const activationDelaySeconds = values.now === true ? 0 : config.keysActivationDelaySeconds;
      const now = Date.now();
      const key = await rotateSigningKey(config.keysDir, { activationDelaySeconds, now });
      const agedOut = removeAgedOut(config, now);
      out.result(keyView(factsOf(key), key.activatesAt > now ? 'pending' : 'signing', null), [
        `new key ${key.jwk.kid} is published now and signs from ${new Date(key.activatesAt).toISOString()}`,
        ...agedOut,
        reloadLine(config),
      ]);
    },
  },
  retire: {
    options: { kid: { type: 'string' } },
    async run(config: Config, out: Output, values: Values, services: () => Promise<Services>) {
      const now = Date.now();
      const { retired, takesOver } = retireSigningKey(config.keysDir, required(values, 'kid'), { now, retentionMs: signingKeyRetentionMs(config) });
      const agedOut = removeAgedOut(config, now);
      out.result({ ...retiredKey(retired), takesOver: takesOver?.jwk.kid ?? null }, [
        `key ${retired.kid} is retired: its private key was deleted and it is no longer published or accepted`,
        ...(takesOver ? [`key ${takesOver.jwk.kid} signs from now on`] : []),
        ...agedOut,
        reloadLine(config),
      ]);
      // The key is gone whatever happens next; only the audit event can still fail.
      try {
        const { audit } = await services();
        await audit.record({ type: 'key.retired', details: { actor: actor(), kid: retired.kid, takesOver: takesOver?.jwk.kid } });
      } catch (error) {
        throw new IncompleteError(`key ${retired.kid} is retired, but the audit event could not be stored: ${(error as Error).message}`);
      }
    },
  },
} as const;
