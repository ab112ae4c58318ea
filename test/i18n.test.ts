import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceCodeGrantType } from '../src/registry/client-rules.js';
import { createBrowser, textOf, type Browser } from './support/browser.js';
import { englishWordsOn } from './support/english.js';
import { enterUserCode } from './support/device.js';
import { createClient, createUser, password } from './support/fixtures.js';
import { discoverRp, redirectUri } from './support/rp.js';
import { sendHttp } from './support/raw-http.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;
let rp: oidc.Configuration;
let hostileRp: oidc.Configuration;
let deviceRp: oidc.Configuration;
let email: string;

const hostileName = '<script>alert("x")</script> & Co';

beforeAll(async () => {
  server = await startTestServer();
  const client = await createClient(server.services, { name: 'Gästebuch' });
  rp = await discoverRp(server.issuer, client.clientId, client.clientSecret!);
  const hostile = await createClient(server.services, { name: hostileName });
  hostileRp = await discoverRp(server.issuer, hostile.clientId, hostile.clientSecret!);
  const device = await createClient(server.services, {
    clientId: 'fernseher', name: 'Fernseher', isPublic: true, redirectUris: [], postLogoutRedirectUris: [], grantTypes: [deviceCodeGrantType],
  });
  deviceRp = await discoverRp(server.issuer, device.clientId);
  email = (await createUser(server.services)).email;
});
afterAll(() => server.close());

/** An authorization request (code + PKCE) with extra parameters; the browser is left on the first page it shows. */
async function startSignIn(browser: Browser, extra: Record<string, string> = {}, client = rp) {
  const url = oidc.buildAuthorizationUrl(client, {
    redirect_uri: redirectUri, scope: 'openid email offline_access', prompt: 'consent',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    state: oidc.randomState(), ...extra,
  });
  return browser.follow(url.href, {}, redirectUri);
}

const languageOf = (html: string) => /<html lang="([^"]+)"/.exec(html)?.[1];

describe('hosted pages in the reader\'s language', () => {
  it('shows a German browser the login, its errors and the consent page in German', async () => {
    const browser = createBrowser({ headers: { 'accept-language': 'de-DE,de;q=0.9,en;q=0.5' } });
    const login = await startSignIn(browser);
    expect(languageOf(login.html)).toBe('de');
    expect(login.headers.get('content-language')).toBe('de');
    expect(login.headers.get('vary')).toMatch(/accept-language/i);
    expect(textOf(login.html, 'h1')).toBe('Anmelden');
    expect(textOf(login.html, 'title')).toBe('Anmelden · Latchkey');
    expect(textOf(login.html, '.lead')).toBe('um mit Gästebuch fortzufahren');
    expect(textOf(login.html, 'label[for="password"]')).toBe('Passwort');

    const wrong = await browser.submit(login, 'form[action$="/login"]', { email, password: 'not the password' });
    expect(textOf(wrong.html, '.error')).toBe('E-Mail-Adresse oder Passwort ist falsch.');

    const consent = await browser.submit(wrong, 'form[action$="/login"]', { email, password });
    expect(languageOf(consent.html)).toBe('de');
    expect(textOf(consent.html, 'h1')).toBe('Zugriff erlauben?');
    expect(textOf(consent.html, '.lead')).toBe('Gästebuch möchte:');
    expect(consent.html).toContain('Ihre E-Mail-Adresse sehen');
    expect(consent.html).toContain('Zugriff behalten, während Sie nicht da sind');
    expect(textOf(consent.html, 'form[action$="/confirm"] button')).toBe('Erlauben');

    for (const page of [login, wrong, consent]) expect(englishWordsOn(page.html)).toEqual([]);

    const done = await browser.submit(consent, 'form[action$="/confirm"]', {}, redirectUri);
    expect(new URL(done.url).searchParams.get('code')).toBeTruthy();
  });

  it('shows a German browser the error pages in German, from oidc-provider and from the interaction routes', async () => {
    const german = { 'accept-language': 'de' };
    const unknownClient = await createBrowser({ headers: german }).follow(`${server.issuer}/auth?client_id=nobody&response_type=code&scope=openid`);
    expect(unknownClient.status).toBe(400);
    expect(languageOf(unknownClient.html)).toBe('de');
    expect(textOf(unknownClient.html, 'h1')).toBe('Etwas ist schiefgegangen');
    expect(textOf(unknownClient.html, '.error')).toBe('Latchkey kennt die Anwendung nicht, die Sie hierher geschickt hat.');

    // A form posted without its CSRF token: our own refusal, in German.
    const browser = createBrowser({ headers: german });
    const login = await startSignIn(browser);
    const forged = await browser.follow(new URL(`${new URL(login.url).pathname}/login`, server.issuer).href, {
      method: 'POST', body: new URLSearchParams({ email, password }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(forged.status).toBe(400);
    expect(textOf(forged.html, '.error')).toContain('Das Formular ist abgelaufen');

    // 421 from the first middleware, before oidc-provider reads the request.
    const port = new URL(server.issuer).port;
    const misdirected = await sendHttp(Number(port), { target: '/auth', headers: { host: `127.0.0.1:${port}`, accept: 'text/html', 'accept-language': 'de' } });
    expect(misdirected.status).toBe(421);
    expect(languageOf(misdirected.body)).toBe('de');
    expect(textOf(misdirected.body, '.error')).toBe(`Dieses Latchkey ist nur unter ${new URL(server.issuer).origin} erreichbar, nicht unter 127.0.0.1:${port}.`);
    // oidc-provider's description stays English, marked lang="en"; everything else is German.
    for (const html of [unknownClient.html, forged.html, misdirected.body]) expect(englishWordsOn(html)).toEqual([]);
  });

  it('shows a German browser the federated sign-in\'s failure page in German', async () => {
    const browser = createBrowser({ headers: { 'accept-language': 'de' } });
    const login = await startSignIn(browser);
    const csrf = /name="csrf" value="([^"]+)"/.exec(login.html)![1]!;
    const failed = await browser.follow(`${login.url}/federated/nowhere`, {
      method: 'POST', body: new URLSearchParams({ csrf }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(failed.status).toBe(400);
    expect(languageOf(failed.html)).toBe('de');
    expect(textOf(failed.html, 'h1')).toBe('Anmeldung nicht abgeschlossen');
    expect(textOf(failed.html, '.error')).toBe('Diese Art der Anmeldung ist nicht (mehr) verfügbar. Wählen Sie auf der Anmeldeseite eine andere.');
    expect(englishWordsOn(failed.html)).toEqual([]);
  });

  it('shows a German browser the device pages in German', async () => {
    const browser = createBrowser({ headers: { 'accept-language': 'de' } });
    const enter = await browser.follow(`${server.issuer}/device`);
    expect(languageOf(enter.html)).toBe('de');
    expect(textOf(enter.html, 'h1')).toBe('Gerät verbinden');
    const wrong = await browser.submit(enter, 'form[action="/device"]', { user_code: 'BCDF-GHJK' });
    expect(textOf(wrong.html, '.error')).toBe('Dieser Code stimmt nicht. Prüfen Sie den Code auf Ihrem Gerät und geben Sie ihn noch einmal ein.');

    const authorization = await oidc.initiateDeviceAuthorization(deviceRp, { scope: 'openid email' });
    const confirm = await enterUserCode(browser, server.issuer, authorization.user_code);
    expect(textOf(confirm.html, 'h1')).toBe('Fernseher verbinden?');
    expect(textOf(confirm.html, '.warning')).toContain('Fahren Sie nur fort');
    expect(confirm.html).toContain('Ihre E-Mail-Adresse sehen');
    const cancelled = await browser.submit(confirm, '#device-abort');
    expect(textOf(cancelled.html, 'h1')).toBe('Anmeldung abgebrochen');
    for (const page of [enter, wrong, confirm, cancelled]) expect(englishWordsOn(page.html)).toEqual([]);
  });

  it('shows a German browser its account page and the sign-in security page in German', async () => {
    const browser = createBrowser({ headers: { 'accept-language': 'de' } });
    const login = await startSignIn(browser);
    await browser.submit(login, 'form[action$="/login"]', { email, password });
    const account = await browser.follow(`${server.issuer}/account`);
    expect(account.status).toBe(200);
    expect(languageOf(account.html)).toBe('de');
    expect(textOf(account.html, 'h1')).toBe('Ihr Konto');
    expect(textOf(account.html, '#password h2')).toBe('Passwort');
    expect(account.html).toContain('Anwendungen mit Zugriff');
    const security = await browser.follow(`${server.issuer}/account/security`);
    expect(textOf(security.html, 'h1')).toBe('Anmeldesicherheit');
    expect(security.html).toContain('Authenticator-App einrichten');
    for (const page of [account, security]) expect(englishWordsOn(page.html)).toEqual([]);
  });

  it('lets ui_locales=de beat Accept-Language: en, on the interaction pages and on an error of the authorization request', async () => {
    const browser = createBrowser({ headers: { 'accept-language': 'en' } });
    const login = await startSignIn(browser, { ui_locales: 'fr-CA de' });
    expect(languageOf(login.html)).toBe('de');
    expect(textOf(login.html, 'h1')).toBe('Anmelden');
    // The language stays with the interaction: the next page of the same sign-in speaks it too.
    const wrong = await browser.submit(login, 'form[action$="/login"]', { email, password: 'wrong' });
    expect(textOf(wrong.html, '.error')).toBe('E-Mail-Adresse oder Passwort ist falsch.');

    const refused = await browser.follow(`${server.issuer}/auth?client_id=nobody&response_type=code&scope=openid&ui_locales=de`);
    expect(textOf(refused.html, 'h1')).toBe('Etwas ist schiefgegangen');

    // RP-Initiated Logout 1.0 §2 takes ui_locales too: the logout page of a signed-in English browser in German.
    const signedIn = createBrowser({ headers: { 'accept-language': 'en' } });
    const consent = await signedIn.submit(await startSignIn(signedIn), 'form[action$="/login"]', { email, password });
    await signedIn.submit(consent, 'form[action$="/confirm"]', {}, redirectUri);
    const logout = await signedIn.follow(`${server.issuer}/session/end?ui_locales=de`);
    expect(textOf(logout.html, 'h1')).toBe('Abmelden');
    expect(logout.html).toContain('Ja, abmelden');
    expect(englishWordsOn(logout.html)).toEqual([]);

    // ui_locales=en beats a German browser.
    const english = await startSignIn(createBrowser({ headers: { 'accept-language': 'de' } }), { ui_locales: 'en' });
    expect(textOf(english.html, 'h1')).toBe('Sign in');
  });

  it('falls back to English for a language it does not speak, and honours q-values', async () => {
    const french = await startSignIn(createBrowser({ headers: { 'accept-language': 'fr-FR, fr;q=0.9' } }), { ui_locales: 'fr' });
    expect(languageOf(french.html)).toBe('en');
    expect(textOf(french.html, 'h1')).toBe('Sign in');
    expect(french.headers.get('content-language')).toBe('en');

    const preferGerman = await startSignIn(createBrowser({ headers: { 'accept-language': 'en;q=0.5, de' } }));
    expect(languageOf(preferGerman.html)).toBe('de');
    const preferEnglish = await startSignIn(createBrowser({ headers: { 'accept-language': 'de;q=0.5, en' } }));
    expect(languageOf(preferEnglish.html)).toBe('en');
    const noGerman = await startSignIn(createBrowser({ headers: { 'accept-language': 'de;q=0, fr' } }));
    expect(languageOf(noGerman.html)).toBe('en');
  });

  it('advertises the languages it speaks as ui_locales_supported, beside the rest of discovery', async () => {
    const metadata = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json() as Record<string, unknown>;
    expect(metadata.ui_locales_supported).toEqual(['en', 'de']);
    expect(metadata.claim_types_supported).toEqual(['normal']);
  });

  it('escapes a value put into a German sentence: an app named <script> stays text', async () => {
    const browser = createBrowser({ headers: { 'accept-language': 'de' } });
    const login = await startSignIn(browser, {}, hostileRp);
    expect(login.html).not.toContain('<script>');
    expect(login.html).toContain('um mit <strong>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co</strong> fortzufahren');
    const consent = await browser.submit(login, 'form[action$="/login"]', { email, password });
    expect(textOf(consent.html, 'h1')).toBe('Zugriff erlauben?');
    expect(consent.html).not.toContain('<script>');
    expect(consent.html).toContain('<strong>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co</strong> möchte:');
    expect(textOf(consent.html, '.lead')).toBe(`${hostileName} möchte:`);
  });
});
