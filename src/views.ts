import { fileURLToPath } from 'node:url';
import pug from 'pug';
import type { Message } from './i18n/catalogues.js';
import type { Languages } from './i18n/languages.js';

export type Views = {
  /**
   * Renders a page with `t` (translate) and `lang` in its locals, in the language of the request being answered
   * (`ui_locales`, then Accept-Language; docs/translations.md), else English.
   */
  render(name: string, locals: Record<string, unknown>): string;
  /** A message in the same language, for the few answers a page's script shows (JSON for public/passkeys.js). */
  translate(message: string | Message): string;
};

const viewsDir = fileURLToPath(new URL('../views/', import.meta.url));

/**
 * Compiles each pug template once, on first use. `globals` are locals every page gets (which optional links the
 * login page shows).
 */
export function createViews(languages: Languages, globals: Record<string, unknown> = {}): Views {
  const compiled = new Map<string, pug.compileTemplate>();
  return {
    render(name, locals) {
      let template = compiled.get(name);
      if (!template) {
        template = pug.compileFile(`${viewsDir}${name}.pug`);
        compiled.set(name, template);
      }
      const t = languages.translator(languages.current());
      const ctx = languages.request();
      if (ctx) {
        // The page depends on Accept-Language: a cache must keep one copy per value (RFC 9110 §12.5.5).
        ctx.vary('Accept-Language');
        ctx.set('Content-Language', t.language);
      }
      return template({ ...globals, ...locals, t, lang: t.language });
    },
    translate: (message) => languages.translator(languages.current())(message),
  };
}
