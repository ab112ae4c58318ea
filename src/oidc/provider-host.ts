import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import {
  ensureCookieSecrets, ensureSigningKey, readSigningKeys, servedSigningKeys, signingKeysFingerprint,
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
  /** The issuer known now (null: not yet); every URL Latchkey mails derives from it. */
  issuer(): string | null;
  /** The provider to use now; the first call builds it. */
  current(): Promise<Provider>;
  /**
   * Rebuilds the provider if the keys to serve at `now` changed (another process rotated or retired one, a pending
   * key became the one that signs, or a superseded one aged out); resolves whether it did. A provider not built yet
   * has nothing to rebuild.
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
export function createProviderHost(deps: {
  keysDir: string; issuer: string | null; retentionMs: number; logger: Logger; loadBuilder: () => Promise<BuildProvider>;
}): ProviderHost {
  const { keysDir, retentionMs } = deps;
  // Retired keys have left the files; aged-out ones are left out here, so the fingerprint changes when either happens.
  const servedAt = (now: number) => servedSigningKeys(readSigningKeys(keysDir), now, retentionMs);
  let issuer = deps.issuer;
  let builder: Promise<BuildProvider> | undefined;
  // Read on the first build and kept: every provider this process builds signs cookies and CSRF tokens alike.
  let cookieSecrets: CookieSecrets | undefined;
  let serving: { provider: Promise<Provider>; fingerprint: string } | undefined;

  /** `served`: the keys to publish, in signing order (servedSigningKeys). */
  async function build(served: StoredSigningKey[]): Promise<Provider> {
    // The `iss` relying parties check: a process that serves no HTTP (the CLI) only has the configured one.
    if (!issuer) throw new Error('set ISSUER to the server\'s issuer URL to send logout tokens');
    if (served.length === 0) throw new Error(`no signing keys in ${keysDir} (KEYS_DIR) to sign logout tokens with`);
    cookieSecrets ??= ensureCookieSecrets(keysDir);
    builder ??= deps.loadBuilder();
    return (await builder)({ issuer, signingKeys: served.map((key) => key.jwk), cookieSecrets });
  }

  return {
    async ensureKeys() {
      ensureCookieSecrets(keysDir);
      await ensureSigningKey(keysDir);
    },

    useIssuer(known) {
      issuer = known;
    },

    issuer: () => issuer,

    current() {
      if (!serving) {
        const served = servedAt(Date.now());
        serving = { provider: build(served), fingerprint: signingKeysFingerprint(served) };
      }
      return serving.provider;
    },

    async reloadSigningKeys(now = Date.now()) {
      if (!serving) return false;
      const served = servedAt(now);
      const fingerprint = signingKeysFingerprint(served);
      if (fingerprint === serving.fingerprint) return false;
      const provider = build(served);
      // A failed rebuild rejects here and leaves the provider serving now in place.
      await provider;
      serving = { provider, fingerprint };
      deps.logger.info({ event: 'keys.reloaded', signingKid: served[0]?.jwk.kid, publishedKids: served.map((key) => key.jwk.kid) }, 'signing keys reloaded');
      return true;
    },
  };
}
