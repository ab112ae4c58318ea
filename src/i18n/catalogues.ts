import de from '../../locales/de.json' with { type: 'json' };
import en from '../../locales/en.json' with { type: 'json' };

/** The languages Latchkey's pages speak; the first is the default and the fallback of every missing message. */
export const supportedLanguages = ['en', 'de'] as const satisfies readonly [string, ...string[]];
export type Language = (typeof supportedLanguages)[number];

/**
 * The value of a placeholder: text, a number, another message (said in the same language: a reason inside the
 * sentence that refuses an address) or a list of messages (joined the language's way: "Latin and Cyrillic").
 */
export type Param = string | number | Message | Message[];
export type Params = { [name: string]: Param };
/** A message to show in the reader's language: a catalogue key and the values of its `{placeholders}`. */
export type Message = { key: string; params?: Params };
/** A piece of a translated sentence: text, or the value of one of its placeholders (which a page may emphasise). */
export type Part = { text: string; isParam: boolean };

export type Catalogue = Record<string, string>;

/**
 * `locales/<language>.json`: one flat object of keys to sentences per language. Imported, so the compiler copies
 * them next to the code (dist/locales) and a missing one fails at build time, not at the first page.
 */
export const catalogues: Record<Language, Catalogue> = { en, de };

/**
 * Translations for one language. A key missing from it falls back to English, and a key missing from English too
 * is shown as it is (so a page that passes plain text still shows it). A `count` parameter picks the plural form
 * `key.one` / `key.other` by the language's plural rules (Intl.PluralRules) when the catalogue has them.
 *
 * Placeholders are filled with plain text; the pages print every translated string through pug's escaping
 * (`=`, `#{}`), never as HTML, so a value (an app's name) can never add markup.
 */
export function createTranslator(language: string, catalogue: Catalogue, fallback: Catalogue) {
  const plurals = new Intl.PluralRules(language);
  const lists = new Intl.ListFormat(language, { type: 'conjunction' });
  function sentence(key: string, params: Params): string {
    const count = params.count;
    const pluralKey = typeof count === 'number' ? `${key}.${plurals.select(count)}` : undefined;
    const otherKey = typeof count === 'number' ? `${key}.other` : undefined;
    for (const candidate of [pluralKey, otherKey, key]) {
      if (!candidate) continue;
      const found = catalogue[candidate] ?? fallback[candidate];
      if (found !== undefined) return found;
    }
    return key;
  }
  /** The sentence split at its placeholders, each filled with its value. */
  function parts(key: string | Message, params: Params = {}): Part[] {
    const message = typeof key === 'string' ? { key, params } : { key: key.key, params: { ...key.params, ...params } };
    const values = message.params ?? {};
    return sentence(message.key, values).split(/(\{[a-zA-Z_]+\})/).filter(Boolean).map((piece) => {
      const name = /^\{([a-zA-Z_]+)\}$/.exec(piece)?.[1];
      return name !== undefined && name in values ? { text: said(values[name]!), isParam: true } : { text: piece, isParam: false };
    });
  }
  function said(value: Param): string {
    if (Array.isArray(value)) return lists.format(value.map(said));
    return typeof value === 'object' ? t(value) : String(value);
  }
  const t = (key: string | Message, params?: Params): string => parts(key, params).map((part) => part.text).join('');
  return Object.assign(t, { parts, language });
}

export type Translate = ReturnType<typeof createTranslator>;

/**
 * English, for the messages that leave through no page: the CLI's line and the log say an error's message (an
 * AccountError's reason) in English, from the same catalogue the pages use, so no sentence exists twice.
 */
export const inEnglish = createTranslator('en', catalogues.en, catalogues.en);
