import type Provider from 'oidc-provider';
import {
  ensureCookieSecrets, ensureSigningKey, orderForSigning, readSigningKeys, signingKeysFingerprint,
  type CookieSecrets, type SigningKey, type StoredSigningKey,
} from '../signing-keys.js';

/** What a provider is built from besides the services: the issuer and the secrets in KEYS_DIR. */
export type ProviderSecrets = { issuer: string; signingKeys: SigningKey[]; cookieSecrets: CookieSecrets };

export type BuildProvider = (secrets: ProviderSecrets) => Provider;

export type ProviderHost = {
  /** Creates the first signing key and the cookie secrets when KEYS_DIR has none (a server, before it serves). */
  ensureKeys(): Promise<void>;
  /** The issuer, once it is known: a server on PORT=0 without ISSUER learns it from the port it bound. */
  useIssuer(issuer: string): void;
  /** The provider to use now; the first call builds it. */
  current(): Promise<Provider>;
  /**
   * Rebuilds the provider if the key files changed (another process rotated, or a pending key became the one that
   * signs at `now`); resolves whether it did. A provider not built yet has nothing to rebuild.
   */
  reloadSigningKeys(now?: number): Promise<boolean>;
};

/**
 * The one owner of the running provider: it reads the signing keys from KEYS_DIR, builds the provider with them and
 * rebuilds it when they change. oidc-provider fixes its keystore at construction, so a rotation needs a new provider;
 * all its state lives in the database, which makes the swap invisible to clients, and requests in flight finish on
 * the old one. The server serves `current()`; back-channel logout (admin logout, the purge, the CLI) signs with it.
 *
 * `loadBuilder` is called once, on the first build: a CLI command that sends no logout token never loads
 * oidc-provider.
 */
export function createProviderHost(deps: { keysDir: string; issuer: string | null; loadBuilder: () => Promise<BuildProvider> }): ProviderHost {
  const { keysDir } = deps;
  let issuer = deps.issuer;
  let builder: Promise<BuildProvider> | undefined;
  // Read on the first build and kept: every provider this process builds signs cookies and CSRF tokens alike.
  let cookieSecrets: CookieSecrets | undefined;
  let serving: { provider: Promise<Provider>; fingerprint: string } | undefined;

  async function build(keys: StoredSigningKey[], now: number): Promise<Provider> {
    // The `iss` relying parties check: a process that serves no HTTP (the CLI) only has the configured one.
    if (!issuer) throw new Error('set ISSUER to the server\'s issuer URL to send logout tokens');
    if (keys.length === 0) throw new Error(`no signing keys in ${keysDir} (KEYS_DIR) to sign logout tokens with`);
    cookieSecrets ??= ensureCookieSecrets(keysDir);
    builder ??= deps.loadBuilder();
    return (await builder)({ issuer, signingKeys: orderForSigning(keys, now).map((key) => key.jwk), cookieSecrets });
  }

  return {
    async ensureKeys() {
      ensureCookieSecrets(keysDir);
      await ensureSigningKey(keysDir);
    },

    useIssuer(known) {
      issuer = known;
    },

    current() {
      if (!serving) {
        const now = Date.now();
        const keys = readSigningKeys(keysDir);
        serving = { provider: build(keys, now), fingerprint: signingKeysFingerprint(keys, now) };
      }
      return serving.provider;
    },

    async reloadSigningKeys(now = Date.now()) {
      if (!serving) return false;
      const keys = readSigningKeys(keysDir);
      const fingerprint = signingKeysFingerprint(keys, now);
      if (fingerprint === serving.fingerprint) return false;
      const provider = build(keys, now);
      // A failed rebuild rejects here and leaves the provider serving now in place.
      await provider;
      serving = { provider, fingerprint };
      return true;
    },
  };
}
