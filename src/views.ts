import { AsyncLocalStorage } from 'node:async_hooks';
import { fileURLToPath } from 'node:url';
import type { Context, Next } from 'koa';
import pug from 'pug';
import { createTranslator, loadCatalogue, supportedLanguages, type Translate } from './i18n/catalogues.js';
import { requestLanguage } from './i18n/request-language.js';

export type Views = {
  /**
   * Renders a page with `t` (translate) and `lang` in its locals, in `locals.language` when given (a mail, rendered
   * outside the request it is about), else in the language of the request being answered, else in English.
   */
  render(name: string, locals: Record<string, unknown>): string;
  /** The first middleware: every page rendered while answering a request speaks that request's language. */
  speakRequestLanguage(ctx: Context, next: Next): Promise<void>;
  /** The language a request's pages are rendered in (to store with something rendered later, such as a mail). */
  languageOf(ctx: Context): string;
};

const viewsDir = fileURLToPath(new URL('../views/', import.meta.url));

/**
 * Compiles each pug template once, on first use; reads every catalogue once. `globals` are locals every page gets
 * (which optional links the login page shows).
 */
export function createViews(globals: Record<string, unknown> = {}): Views {
  const compiled = new Map<string, pug.compileTemplate>();
  const english = loadCatalogue('en');
  const translators = new Map<string, Translate>(supportedLanguages.map((language) => [
    language, createTranslator(language, language === 'en' ? english : loadCatalogue(language), english),
  ]));
  // The request being answered, so that the many places that render a page need not each pass its language on.
  const answering = new AsyncLocalStorage<Context>();

  return {
    render(name, locals) {
      let template = compiled.get(name);
      if (!template) {
        template = pug.compileFile(`${viewsDir}${name}.pug`);
        compiled.set(name, template);
      }
      const ctx = answering.getStore();
      const asked = typeof locals.language === 'string' ? locals.language : ctx ? requestLanguage(ctx) : 'en';
      const t = translators.get(asked) ?? translators.get('en')!;
      if (ctx && locals.language === undefined) {
        // The page depends on Accept-Language: a cache must keep one copy per value (RFC 9110 §12.5.5).
        ctx.vary('Accept-Language');
        ctx.set('Content-Language', t.language);
      }
      return template({ ...globals, ...locals, t, lang: t.language });
    },
    speakRequestLanguage: (ctx, next) => answering.run(ctx, next),
    languageOf: requestLanguage,
  };
}
