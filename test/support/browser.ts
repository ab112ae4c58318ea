import makeFetchCookie from 'fetch-cookie';
import { parse } from 'node-html-parser';
import { CookieJar } from 'tough-cookie';

export type Page = { url: string; status: number; html: string; headers: Headers };

/**
 * A browser without a screen: a cookie jar, manual redirects and the ability to submit the forms it is shown.
 * `options.headers` go with every request (X-Forwarded-For, say, to be a client behind a trusted proxy).
 */
export function createBrowser(options: { headers?: Record<string, string> } = {}) {
  const jar = new CookieJar();
  const cookieFetch = makeFetchCookie(fetch, jar);

  async function request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(options.headers);
    new Headers(init.headers).forEach((value, name) => headers.set(name, value));
    return cookieFetch(url, { ...init, headers, redirect: 'manual' });
  }

  /** Follows redirects until a page is shown or `stopAt` (e.g. an app's redirect URI) is reached. */
  async function follow(url: string, init: RequestInit = {}, stopAt?: string): Promise<Page> {
    let response = await request(url, init);
    let current = url;
    for (let hops = 0; response.status >= 300 && response.status < 400; hops++) {
      if (hops > 20) throw new Error('too many redirects');
      current = new URL(response.headers.get('location')!, current).href;
      if (stopAt && current.startsWith(stopAt)) return { url: current, status: response.status, html: '', headers: response.headers };
      response = await request(current);
    }
    return { url: current, status: response.status, html: await response.text(), headers: response.headers };
  }

  /** Submits the form matching `selector` on the page with its hidden fields plus `fields`. */
  async function submit(page: Page, selector: string, fields: Record<string, string> = {}, stopAt?: string): Promise<Page> {
    const form = parse(page.html).querySelector(selector);
    if (!form) throw new Error(`no form ${selector} on ${page.url}: ${page.html.slice(0, 500)}`);
    const body = new URLSearchParams();
    for (const input of form.querySelectorAll('input')) {
      const name = input.getAttribute('name');
      if (name && input.getAttribute('type') === 'hidden') body.set(name, input.getAttribute('value') ?? '');
    }
    for (const [name, value] of Object.entries(fields)) body.set(name, value);
    const action = new URL(form.getAttribute('action') ?? page.url, page.url).href;
    return follow(action, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, stopAt);
  }

  return { jar, request, follow, submit };
}

export type Browser = ReturnType<typeof createBrowser>;

export function textOf(html: string, selector: string): string | undefined {
  return parse(html).querySelector(selector)?.text.trim();
}
