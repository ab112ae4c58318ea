import { parse } from 'node-html-parser';
import type * as oidc from 'openid-client';
import type { Authenticator, Tampering } from './authenticator.js';
import type { Browser, Page } from './browser.js';
import { password } from './fixtures.js';
import { startAuthorization } from './second-factor.js';

const form = { 'content-type': 'application/x-www-form-urlencoded' };

/** The hidden CSRF token of the form matching `selector`. */
export const csrfOf = (page: Page, selector: string) => parse(page.html).querySelector(`${selector} input[name="csrf"]`)!.getAttribute('value')!;

/** POSTs a form to a JSON options endpoint, as public/passkeys.js does. */
export async function postForOptions<T>(browser: Browser, url: string, fields: Record<string, string>): Promise<{ status: number; json: { options?: T; error?: string } }> {
  const response = await browser.request(url, { method: 'POST', body: new URLSearchParams(fields), headers: form });
  return { status: response.status, json: await response.json().catch(() => ({})) as { options?: T; error?: string } };
}

/** Adds a passkey on /account/security for the browser's signed-in person; returns the page shown after. */
export async function enrolPasskey(browser: Browser, issuer: string, authenticator: Authenticator, name = 'Laptop', tampering: Tampering = {}) {
  const overview = await browser.follow(`${issuer}/account/security`);
  const csrf = csrfOf(overview, 'form.passkey');
  const { json } = await postForOptions<never>(browser, `${issuer}/account/security/passkeys/options`, { csrf, password, name });
  if (!json.options) throw new Error(`no registration options: ${JSON.stringify(json)}`);
  const response = authenticator.register(json.options, tampering);
  const page = await browser.submit(overview, 'form.passkey', { name, password, response: JSON.stringify(response) });
  return { page, response, challenge: (json.options as { challenge: string }).challenge };
}

/** Starts a sign-in to the login page and asks for passkey-first options there (the interaction's challenge). */
export async function passkeyLoginPage(rp: oidc.Configuration, browser: Browser, extra: Record<string, string> = {}) {
  const flow = await startAuthorization(rp, browser, extra);
  const csrf = csrfOf(flow.page, 'form.passkey');
  const optionsUrl = new URL(`${new URL(flow.page.url).pathname}/passkey/options`, flow.page.url).href;
  const { json } = await postForOptions<Parameters<Authenticator['assert']>[0]>(browser, optionsUrl, { csrf });
  return { ...flow, options: json.options!, csrf };
}

/** Submits a passkey answer on the page's passkey form (the login page or the second-factor page). */
export const submitPasskey = (browser: Browser, page: Page, response: unknown, stopAt: string) =>
  browser.submit(page, 'form.passkey', { response: JSON.stringify(response) }, stopAt);
