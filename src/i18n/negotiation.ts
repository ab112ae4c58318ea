/** A language range the request asked for, with its weight (RFC 9110 §12.4.2: q from 0 to 1, three decimals). */
type Range = { tag: string; q: number };

/** RFC 9110 §12.5.4 `language-range` (RFC 4647 §2.1): `*` or 1–8 letters, then `-` and 1–8 letters or digits each. */
const rangeSyntax = /^(?:\*|[a-z]{1,8}(?:-[a-z0-9]{1,8})*)$/i;
const weightSyntax = /^q=(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/i;

/**
 * The ranges of an Accept-Language header, most wanted first (equal weights keep the header's order). A range that
 * is not well-formed, or whose weight is not, is skipped rather than guessed at; `q=0` means "not this one".
 */
export function parseAcceptLanguage(header: string | undefined): Range[] {
  if (!header || header.length > 1000) return [];
  const ranges: Range[] = [];
  for (const item of header.split(',')) {
    const [tag = '', ...parameters] = item.split(';').map((part) => part.trim());
    if (!rangeSyntax.test(tag)) continue;
    const weight = parameters.find((parameter) => /^q=/i.test(parameter));
    if (parameters.length > 1 || (parameters.length === 1 && !weight) || (weight && !weightSyntax.test(weight))) continue;
    ranges.push({ tag: tag.toLowerCase(), q: weight ? Number(weight.slice(2)) : 1 });
  }
  return ranges.filter((range) => range.q > 0).sort((a, b) => b.q - a.q);
}

/**
 * RFC 4647 §3.4 lookup: the supported language a range names, dropping subtags from the end until one matches
 * (`de-CH` finds `de`). `*` names none in particular, so it settles nothing (the default follows).
 */
function lookup(tag: string, supported: readonly string[]): string | undefined {
  const parts = tag.toLowerCase().split('-');
  while (parts.length) {
    const candidate = parts.join('-');
    const found = supported.find((language) => language.toLowerCase() === candidate);
    if (found) return found;
    parts.pop();
  }
  return undefined;
}

/**
 * The language of a page: the first of the authorization request's `ui_locales` that Latchkey speaks (OpenID
 * Connect Core §3.1.2.1: space-separated BCP 47 tags, in order of preference), else the most wanted language of
 * Accept-Language that it speaks, else the first supported one (English).
 */
export function negotiateLanguage(
  asked: { uiLocales?: unknown; acceptLanguage?: string },
  supported: readonly [string, ...string[]],
): string {
  const uiLocales = typeof asked.uiLocales === 'string' ? asked.uiLocales.split(' ').filter((tag) => rangeSyntax.test(tag) && tag !== '*') : [];
  for (const tag of uiLocales) {
    const found = lookup(tag, supported);
    if (found) return found;
  }
  for (const range of parseAcceptLanguage(asked.acceptLanguage)) {
    if (range.tag === '*') break;
    const found = lookup(range.tag, supported);
    if (found) return found;
  }
  return supported[0];
}
