import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type {
  AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { isoBase64URL, isoCBOR } from '@simplewebauthn/server/helpers';

/** What a test may make the authenticator (or the browser around it) do wrong. */
export type Tampering = { origin?: string; rpId?: string; isUserVerified?: boolean; signCount?: number; credentialId?: string; type?: string };

type Credential = { id: string; privateKey: KeyObject; publicKey: KeyObject; rpId: string; userHandle: string; signCount: number };

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();
const uint32 = (value: number) => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
};
// WebAuthn §6.1 authenticator data flags.
const flagUserPresent = 0x01;
const flagUserVerified = 0x04;
const flagAttestedData = 0x40;

/**
 * A software WebAuthn authenticator for HTTP-level tests, standing in for a phone or a security key the way
 * Chromium's virtual authenticator does in the browser suite: P-256 keys (ES256), `none` attestation, discoverable
 * credentials, and clientDataJSON as a browser at `origin` writes it. Tests tamper with what a real one would get
 * right (origin, RP ID, user verification, the counter) to check that Latchkey refuses it.
 */
export function createAuthenticator(defaults: { origin: string; rpId: string }) {
  const credentials: Credential[] = [];
  let signCount = 0;

  const clientData = (type: string, challenge: string, origin: string) =>
    isoBase64URL.fromUTF8String(JSON.stringify({ type, challenge, origin, crossOrigin: false }));

  return {
    credentials,

    register(options: PublicKeyCredentialCreationOptionsJSON, tampering: Tampering = {}): RegistrationResponseJSON {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const id = tampering.credentialId ?? isoBase64URL.fromBuffer(randomBytes(32));
      const rpId = tampering.rpId ?? defaults.rpId;
      credentials.push({ id, privateKey, publicKey, rpId, userHandle: options.user.id, signCount: 0 });
      const jwk = publicKey.export({ format: 'jwk' });
      const coseKey = isoCBOR.encode(new Map<number, number | Uint8Array>([
        [1, 2], [3, -7], [-1, 1], [-2, isoBase64URL.toBuffer(jwk.x!)], [-3, isoBase64URL.toBuffer(jwk.y!)],
      ]));
      const idBytes = isoBase64URL.toBuffer(id);
      const flags = flagUserPresent | flagAttestedData | (tampering.isUserVerified === false ? 0 : flagUserVerified);
      const idLength = Buffer.alloc(2);
      idLength.writeUInt16BE(idBytes.length);
      const authData = Buffer.concat([sha256(rpId), Buffer.from([flags]), uint32(0), Buffer.alloc(16), idLength, idBytes, coseKey]);
      const attestationObject = isoCBOR.encode(new Map<string, unknown>([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]) as never);
      return {
        id, rawId: id, type: 'public-key', clientExtensionResults: {}, authenticatorAttachment: 'platform',
        response: {
          clientDataJSON: clientData(tampering.type ?? 'webauthn.create', options.challenge, tampering.origin ?? defaults.origin),
          attestationObject: isoBase64URL.fromBuffer(attestationObject), transports: ['internal'],
        },
      };
    },

    /** Signs the options' challenge with an allowed credential (any of this RP's, for passkey-first). */
    assert(options: PublicKeyCredentialRequestOptionsJSON, tampering: Tampering = {}): AuthenticationResponseJSON {
      const allowed = options.allowCredentials?.map((credential) => credential.id) ?? [];
      const credential = credentials.find((candidate) => (tampering.credentialId ?? null) === null
        ? candidate.rpId === (options.rpId ?? defaults.rpId) && (allowed.length === 0 || allowed.includes(candidate.id))
        : candidate.id === tampering.credentialId);
      if (!credential) throw new Error('the authenticator holds no credential for these options');
      signCount += 1;
      credential.signCount = tampering.signCount ?? signCount;
      const flags = flagUserPresent | (tampering.isUserVerified === false ? 0 : flagUserVerified);
      const authData = Buffer.concat([sha256(tampering.rpId ?? credential.rpId), Buffer.from([flags]), uint32(credential.signCount)]);
      const clientDataJSON = clientData(tampering.type ?? 'webauthn.get', options.challenge, tampering.origin ?? defaults.origin);
      const signature = sign('sha256', Buffer.concat([authData, sha256(isoBase64URL.toBuffer(clientDataJSON))]), credential.privateKey);
      return {
        id: credential.id, rawId: credential.id, type: 'public-key', clientExtensionResults: {}, authenticatorAttachment: 'platform',
        response: {
          clientDataJSON, authenticatorData: isoBase64URL.fromBuffer(authData), signature: isoBase64URL.fromBuffer(signature),
          userHandle: credential.userHandle,
        },
      };
    },
  };
}

export type Authenticator = ReturnType<typeof createAuthenticator>;
