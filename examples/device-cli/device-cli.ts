import * as oidc from 'openid-client';

export type DeviceCliOptions = {
  /** Latchkey's issuer URL. */
  issuer: string;
  /** A public client registered with the device_code grant and the API's `read` scope. */
  clientId: string;
  /** The example API (examples/api) and its audience as registered with `latchkey apis create`. */
  apiUrl: string;
  apiAudience: string;
  /** Where the CLI talks to its user. */
  print: (line: string) => void;
};

export type DeviceCliResult = { status: number; answer: unknown };

/**
 * A command-line tool signing in with the device authorization grant (RFC 8628): it asks Latchkey for a code, tells
 * its user where to enter it, polls until they have signed in and allowed it in a browser (on any device), and then
 * calls the example API with the access token. It keeps no secret: a CLI on someone's machine cannot.
 */
export async function runDeviceCli(options: DeviceCliOptions): Promise<DeviceCliResult> {
  const { issuer, print } = options;
  // Plain http only to a Latchkey on this machine (development); anywhere else the issuer must use https.
  const isLocal = ['localhost', '127.0.0.1', '[::1]'].includes(new URL(issuer).hostname);
  const config = await oidc.discovery(new URL(issuer), options.clientId, undefined, oidc.None(), isLocal ? { execute: [oidc.allowInsecureRequests] } : {});
  const authorization = await oidc.initiateDeviceAuthorization(config, { scope: 'openid email read', resource: options.apiAudience });
  print(`To sign in, open ${authorization.verification_uri} and enter the code ${authorization.user_code}`);
  print(`(or open ${authorization.verification_uri_complete}; the code expires in ${Math.round(authorization.expires_in / 60)} minutes)`);
  const tokens = await oidc.pollDeviceAuthorizationGrant(config, authorization);
  print('Signed in.');

  const response = await fetch(`${options.apiUrl}/hello`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  const answer: unknown = await response.json();
  print(`The API answered ${response.status}: ${JSON.stringify(answer)}`);
  return { status: response.status, answer };
}
