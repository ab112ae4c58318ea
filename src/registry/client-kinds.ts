import { isLoopbackHost, readAbsoluteUri } from '../absolute-uri.js';

/** RFC 8252 §8.4 and OpenID Connect Registration §2: a browser-based or server app (web) or an installed one (native). */
export const applicationTypes = ['web', 'native'] as const;
export type ApplicationType = (typeof applicationTypes)[number];

export function isApplicationType(value: string): value is ApplicationType {
  return (applicationTypes as readonly string[]).includes(value);
}

/**
 * Which redirect URIs each kind of app may register (the URI is already absolute, without fragment or credentials,
 * and plain http only to loopback). RFC 8252 §7.1: a private-use scheme belongs to an app installed on the device,
 * so only a native client may use one (a browser could not receive it either). §7.3: a native app's loopback URI
 * matches on any port, since the app picks a free port at run time; oidc-provider does that matching for native
 * clients only. §7.2: a claimed https URI is never a loopback one. A web client's URIs match exactly.
 */
export function redirectUriProblem(url: URL, applicationType: ApplicationType): string | undefined {
  const isWebScheme = url.protocol === 'https:' || url.protocol === 'http:';
  if (applicationType === 'web' && !isWebScheme) return 'uses a private-use scheme, which only a native app (--application-type native) may register';
  if (applicationType === 'native' && url.protocol === 'https:' && isLoopbackHost(url.hostname)) {
    return 'is https on a loopback host: a native app uses http on the loopback interface (any port) or a claimed https URI';
  }
  return undefined;
}

/**
 * A web origin a browser app calls from (the `Origin` header it sends): scheme, host and port only, https except
 * on localhost, as the Fetch standard serialises it, so an exact comparison with the header is the whole check.
 */
export function webOriginProblem(value: string): string | undefined {
  const read = readAbsoluteUri(value);
  if ('problem' in read) return read.problem;
  const { url } = read;
  if (url.origin !== value) return `must be an origin alone (scheme://host[:port], no path or trailing slash), e.g. ${url.origin}`;
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    return 'must use https (http is allowed only for localhost)';
  }
  return undefined;
}
