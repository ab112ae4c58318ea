import { describe, expect, it } from 'vitest';
import { createTranslator } from '../src/i18n/catalogues.js';
import { negotiateLanguage, parseAcceptLanguage } from '../src/i18n/negotiation.js';

const supported = ['en', 'de'] as const;
const choose = (acceptLanguage?: string, uiLocales?: unknown) => negotiateLanguage({ acceptLanguage, uiLocales }, supported);

describe('choosing the language of a page', () => {
  it('takes the first of ui_locales that Latchkey speaks, before Accept-Language', () => {
    expect(choose('en', 'de')).toBe('de');
    expect(choose('en', 'fr-CA de en')).toBe('de');
    expect(choose('de', 'en')).toBe('en');
    // None of ui_locales is spoken: Accept-Language decides.
    expect(choose('de', 'fr ja')).toBe('de');
  });

  it('honours q-values (RFC 9110 §12.4.2) and keeps the header order for equal weights', () => {
    expect(choose('en;q=0.5, de')).toBe('de');
    expect(choose('de;q=0.4, en;q=0.8')).toBe('en');
    expect(choose('fr, de, en')).toBe('de');
    expect(choose('en, de')).toBe('en');
    expect(choose('de;q=0, en;q=0.1')).toBe('en');
    expect(choose('de;Q=1.000')).toBe('de');
  });

  it('finds a language from a more specific range (RFC 4647 §3.4 lookup)', () => {
    expect(choose('de-CH, en;q=0.5')).toBe('de');
    expect(choose('DE-de')).toBe('de');
    expect(choose('', 'de-AT')).toBe('de');
  });

  it('falls back to English for languages it does not speak, for * and for nothing at all', () => {
    expect(choose('fr, ja;q=0.8')).toBe('en');
    expect(choose('*')).toBe('en');
    expect(choose('fr, *;q=0.5, de;q=0.1')).toBe('en');
    expect(choose(undefined)).toBe('en');
    expect(choose('', ['de'])).toBe('en');
  });

  it('skips malformed ranges and weights instead of guessing', () => {
    expect(parseAcceptLanguage('de;q=2, en')).toEqual([{ tag: 'en', q: 1 }]);
    expect(parseAcceptLanguage('de;q=0.5;x=1, en;q=0.2')).toEqual([{ tag: 'en', q: 0.2 }]);
    expect(parseAcceptLanguage('de_DE, <script>, en;q=abc, de-CH;q=0.9')).toEqual([{ tag: 'de-ch', q: 0.9 }]);
    expect(parseAcceptLanguage('de;q=0.1234')).toEqual([]);
    expect(parseAcceptLanguage(`${'x,'.repeat(600)}de`)).toEqual([]);
    expect(choose('en', 'de_DE *')).toBe('en');
  });
});

describe('a translator', () => {
  const english = { greet: 'Hello {name}', only: 'English only', 'mins.one': '{count} minute', 'mins.other': '{count} minutes' };
  const german = createTranslator('de', { greet: 'Hallo {name}', 'mins.one': '{count} Minute', 'mins.other': '{count} Minuten' }, english);

  it('fills placeholders, falls back to English for a missing key and shows an unknown key as it is', () => {
    expect(german('greet', { name: 'Ada' })).toBe('Hallo Ada');
    expect(german({ key: 'greet', params: { name: 'Ada' } })).toBe('Hallo Ada');
    expect(german('only')).toBe('English only');
    expect(german('not a key')).toBe('not a key');
    // A value that looks like a placeholder is not filled again.
    expect(german('greet', { name: '{name}' })).toBe('Hallo {name}');
  });

  it('picks the plural form by the language rules', () => {
    expect(german('mins', { count: 1 })).toBe('1 Minute');
    expect(german('mins', { count: 5 })).toBe('5 Minuten');
  });

  it('splits a sentence into text and values, so a page can emphasise a value without building HTML', () => {
    expect(german.parts('greet', { name: '<b>x</b>' })).toEqual([{ text: 'Hallo ', isParam: false }, { text: '<b>x</b>', isParam: true }]);
  });
});
