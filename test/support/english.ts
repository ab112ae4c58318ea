import { parse } from 'node-html-parser';
import { expect } from 'vitest';
import type { Page } from './browser.js';

/**
 * Words of an English sentence that German never uses, in any case. A German page holding one of them shows English
 * text somewhere (a reason from code, a device name); a page's values (an app's name, an email, an IP) are chosen by
 * the tests not to contain them.
 */
const englishOnly = new Set([
  'the', 'and', 'is', 'are', 'must', 'your', 'you', 'with', 'not', 'of', 'to', 'has', 'have', 'this', 'that', 'it', 'its',
  'at', 'be', 'by', 'from', 'on', 'or', 'unknown', 'characters', 'letters', 'contains', 'choose', 'another',
  'please', 'sign', 'signed', 'cancel', 'allow',
]);

/**
 * The English words a person reads on a page: its visible text (not scripts, styles or attributes), leaving out what
 * is English on purpose: marked `lang="en"` (oidc-provider's description for the app's developer) or shown as
 * `<code>` (an error code such as `unknown_connection`), and addresses (a mailed link).
 */
export function englishWordsOn(html: string): string[] {
  const root = parse(html.replaceAll('><', '> <'));
  for (const hidden of root.querySelectorAll('script, style, code, [lang="en"]')) hidden.remove();
  const body = root.querySelector('body') ?? root;
  const title = root.querySelector('title')?.text ?? '';
  // A link's random token may hold "to" or "on" between its digits.
  const words = `${title} ${body.text}`.replace(/https?:\/\/\S+/g, ' ').match(/\p{L}+/gu) ?? [];
  return words.filter((word) => englishOnly.has(word.toLowerCase()));
}

/** Every page given is in German from the first word to the last: no sentence, reason or name left in English. */
export function expectGerman(...pages: Page[]) {
  for (const page of pages) {
    expect(/<html lang="([^"]+)"/.exec(page.html)?.[1], page.url).toBe('de');
    expect(englishWordsOn(page.html), page.url).toEqual([]);
  }
}
