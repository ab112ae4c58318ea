// A single-page app signing in through Latchkey as a public client: authorization code + PKCE, with every token
// bound to a DPoP key (RFC 9449) that cannot leave the browser (a non-extractable WebCrypto key). Tokens and key live
// in this module's memory only: nothing is written to localStorage, sessionStorage (beyond the short-lived sign-in
// state that has to survive the redirect) or cookies, so a reload means signing in again (quick: Latchkey still
// knows the user). See examples/web-app for the back-end-for-front-end alternative.
import * as oauth from '/vendor/oauth4webapi.js';

const settings = await (await fetch('/settings.json')).json();
const issuer = new URL(settings.issuer);
// oauth4webapi refuses plain http; the example allows it only for an issuer on this machine.
const transport = issuer.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(issuer.hostname) ? { [oauth.allowInsecureRequests]: true } : {};
const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, transport));
const client = { client_id: settings.clientId };
const redirectUri = `${location.origin}/callback`;
const scope = 'openid email read';

/** The signed-in state, in memory: { DPoP, accessToken, expiresAt, refreshToken, idToken, email }. */
let session;
/** The one refresh in flight: Latchkey rotates refresh tokens, and a second use of the old one revokes the grant. */
let refreshing;

const element = (id) => document.getElementById(id);
function show(status, output = '') {
  element('status').textContent = status;
  element('output').textContent = output;
  element('sign-in').hidden = Boolean(session);
  for (const id of ['call-api', 'refresh', 'sign-out']) element(id).hidden = !session;
}

async function signIn() {
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  // Only what the callback needs to finish this sign-in, for this tab, removed as soon as it is read.
  sessionStorage.setItem('sign-in', JSON.stringify({ codeVerifier, state, nonce }));
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: client.client_id, redirect_uri: redirectUri, response_type: 'code', scope, state, nonce,
    code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
    resource: settings.apiAudience,
  }).toString();
  location.assign(url);
}

function keep(result, DPoP) {
  const claims = result.id_token ? oauth.getValidatedIdTokenClaims(result) : undefined;
  session = {
    DPoP,
    accessToken: result.access_token,
    expiresAt: Date.now() + (result.expires_in ?? 0) * 1000,
    refreshToken: result.refresh_token ?? session?.refreshToken,
    idToken: result.id_token ?? session?.idToken,
    email: claims?.email ?? session?.email,
  };
}

async function finishSignIn(callbackUrl) {
  const saved = JSON.parse(sessionStorage.getItem('sign-in') ?? 'null');
  sessionStorage.removeItem('sign-in');
  if (!saved) throw new Error('this sign-in was not started here');
  const parameters = oauth.validateAuthResponse(as, client, callbackUrl, saved.state);
  // The key the tokens will be bound to: made now, never extractable, kept with them in memory.
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), parameters, redirectUri, saved.codeVerifier, {
    DPoP, additionalParameters: { resource: settings.apiAudience }, ...transport,
  });
  keep(await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: saved.nonce, requireIdToken: true }), DPoP);
}

function refresh() {
  refreshing ??= (async () => {
    try {
      const response = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), session.refreshToken, {
        DPoP: session.DPoP, additionalParameters: { resource: settings.apiAudience }, ...transport,
      });
      keep(await oauth.processRefreshTokenResponse(as, client, response), session.DPoP);
    } finally {
      refreshing = undefined;
    }
  })();
  return refreshing;
}

async function callApi() {
  // Refreshed first when it has expired or is about to.
  if (session.expiresAt - 5000 < Date.now()) await refresh();
  const response = await oauth.protectedResourceRequest(session.accessToken, 'GET', new URL('/hello', settings.apiUrl), undefined, undefined, {
    DPoP: session.DPoP, ...transport,
  });
  return response.json();
}

async function signOut() {
  const { refreshToken, idToken } = session;
  session = undefined;
  // RFC 7009: the refresh token stops working at once, then Latchkey ends its session (RP-initiated logout).
  if (refreshToken) await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, oauth.None(), refreshToken, transport));
  const url = new URL(as.end_session_endpoint);
  url.search = new URLSearchParams({ client_id: client.client_id, id_token_hint: idToken, post_logout_redirect_uri: `${location.origin}/signed-out` }).toString();
  location.assign(url);
}

/** Runs an action; an error is shown, never thrown into the console. */
function action(run) {
  return async () => {
    try {
      await run();
    } catch (error) {
      show(session ? `Signed in as ${session.email}` : 'Signed out', `Error: ${error.error_description ?? error.message}`);
    }
  };
}

element('sign-in').addEventListener('click', action(signIn));
element('sign-out').addEventListener('click', action(signOut));
element('call-api').addEventListener('click', action(async () => show(`Signed in as ${session.email}`, JSON.stringify(await callApi(), null, 2))));
element('refresh').addEventListener('click', action(async () => {
  await refresh();
  show(`Signed in as ${session.email}`, 'Tokens refreshed.');
}));

await action(async () => {
  if (location.pathname === '/callback') {
    const callbackUrl = new URL(location.href);
    // The code leaves the address bar (and the history) before anything else happens.
    history.replaceState(null, '', '/');
    await finishSignIn(callbackUrl);
    show(`Signed in as ${session.email}`);
  } else {
    const isSignedOut = location.pathname === '/signed-out';
    if (isSignedOut) history.replaceState(null, '', '/');
    show(isSignedOut ? 'Signed out' : 'Not signed in');
  }
})();
