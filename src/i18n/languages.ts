import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context, Next } from 'koa';
import { catalogues, createTranslator, supportedLanguages, type Translate } from './catalogues.js';
import { requestLanguage } from './request-language.js';

export type Languages = ReturnType<typeof createLanguages>;

/**
 * A translator per language, and the language of the request being answered. The pages and the mails a request
 * causes (a reset link, a verification mail) are rendered in many places; they all ask `current()` instead of
 * each being handed the language. Outside a request (the CLI's invitations, a timer) it is English.
 */
export function createLanguages() {
  const translators = new Map<string, Translate>(supportedLanguages.map((language) => [
    language, createTranslator(language, catalogues[language], catalogues.en),
  ]));
  const answering = new AsyncLocalStorage<Context>();
  return {
    /** The translator of a language Latchkey speaks, else English's. */
    translator: (language: string): Translate => translators.get(language) ?? translators.get('en')!,
    /** The request being answered, when there is one. */
    request: (): Context | undefined => answering.getStore(),
    /** The language of the request being answered, else English. */
    current(): string {
      const ctx = answering.getStore();
      return ctx ? requestLanguage(ctx) : 'en';
    },
    /** The first middleware: whatever is rendered while answering a request speaks that request's language. */
    speakRequestLanguage: (ctx: Context, next: Next): Promise<void> => answering.run(ctx, next),
  };
}
