import { isIP } from 'node:net';

/** The WebAuthn Relying Party Latchkey is: its id (the issuer's host name) and the one origin assertions may come from. */
export type RelyingParty = { id: string; origin: string; name: string };

/**
 * The relying party of an issuer, or why there can be none. WebAuthn §5.1.4.1 / §13.4.9: the RP ID is a registrable
 * domain (or `localhost`), never an IP address, and the page must be a secure context (https, or http on
 * `localhost`). So `http://127.0.0.1:3000` cannot offer passkeys; `http://localhost:3000` and any https host can.
 */
export function relyingPartyOf(issuer: string): { rp: RelyingParty } | { unavailable: string } {
  const url = new URL(issuer);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) {
    return { unavailable: `passkeys are off: the issuer ${url.origin} is an IP address, which WebAuthn refuses as a relying party id; use a host name (e.g. http://localhost:${url.port || 80})` };
  }
  if (url.protocol !== 'https:' && host !== 'localhost' && !host.endsWith('.localhost')) {
    return { unavailable: `passkeys are off: browsers allow WebAuthn only on https or http://localhost, and the issuer is ${url.origin}` };
  }
  return { rp: { id: host, origin: url.origin, name: url.host } };
}
