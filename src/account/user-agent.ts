import type { Message } from '../i18n/catalogues.js';

/** Browsers in the order their tokens must be tested: Edge and Opera also say Chrome, Chrome also says Safari. */
const browsers: [RegExp, string][] = [
  [/Edg(e|A|iOS)?\//, 'Edge'],
  [/OPR\/|Opera/, 'Opera'],
  [/SamsungBrowser\//, 'Samsung Internet'],
  [/Firefox\/|FxiOS\//, 'Firefox'],
  [/Chrome\/|CriOS\/|Chromium\//, 'Chrome'],
  [/Safari\//, 'Safari'],
  [/curl\//, 'curl'],
];

/** Systems in test order: Android says Linux, iOS says Mac OS X, Chrome OS says Linux too. */
const systems: [RegExp, string][] = [
  [/Android/, 'Android'],
  [/iPhone|iPad|iPod/, 'iOS'],
  [/CrOS/, 'ChromeOS'],
  [/Windows/, 'Windows'],
  [/Mac OS X|Macintosh/, 'macOS'],
  [/Linux/, 'Linux'],
];

const first = (table: [RegExp, string][], userAgent: string) => table.find(([pattern]) => pattern.test(userAgent))?.[1];

/**
 * "Firefox on Linux": the major browsers and systems named from a User-Agent header, enough for a person to tell
 * their own devices apart; "Unknown browser" otherwise. The names are the products' own, in every language; the
 * sentence around them is the reader's. The header is whatever the client sent, so only these fixed names are ever
 * shown, never the header itself.
 */
export function describeUserAgent(userAgent: string | null | undefined): Message {
  const browser = userAgent ? first(browsers, userAgent) : undefined;
  const system = userAgent ? first(systems, userAgent) : undefined;
  if (browser && system) return { key: 'account.sessions.device.browser_on_system', params: { browser, system } };
  if (browser) return { key: 'account.sessions.device.browser', params: { browser } };
  if (system) return { key: 'account.sessions.device.system', params: { system } };
  return { key: 'account.sessions.device.unknown' };
}
