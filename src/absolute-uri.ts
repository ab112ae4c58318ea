/**
 * What Latchkey accepts as a URI that someone registers (a redirect URI, a back-channel logout URI, an API's
 * audience): absolute, without a fragment, without credentials; and which hosts may be reached over plain http.
 */

/** RFC 8252 §7.3 and §8.3: the loopback interface, the one place plain http is acceptable. */
const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Whether a URL's hostname (as `URL.hostname` spells it, IPv6 in brackets) names the loopback interface. */
export function isLoopbackHost(hostname: string): boolean {
  return loopbackHosts.has(hostname);
}

/**
 * The parsed URL, or what is wrong with it as the end of a sentence about it ("… is not an absolute URI").
 * RFC 3986 §4.3: absolute; RFC 9700 §2.1 (redirect URIs), Back-Channel Logout 1.0 §2.2 and RFC 8707 §2 (resource
 * indicators): no fragment; RFC 3986 §3.2.1: user:password in a URI is deprecated and would be sent to whoever
 * receives the request. `value.includes('#')` also catches an empty fragment, which `URL.hash` reports as ''.
 */
export function readAbsoluteUri(value: string): { url: URL } | { problem: string } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { problem: 'is not an absolute URI' };
  }
  if (url.hash || value.includes('#')) return { problem: 'must not contain a fragment' };
  if (url.username || url.password) return { problem: 'must not contain credentials' };
  return { url };
}
