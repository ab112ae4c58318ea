import { describe, expect, it } from 'vitest';
import { describeUserAgent } from '../src/account/user-agent.js';
import { catalogues, createTranslator, inEnglish } from '../src/i18n/catalogues.js';

const inGerman = createTranslator('de', catalogues.de, catalogues.en);

describe('naming a session\'s browser and system from its User-Agent', () => {
  it.each([
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0', 'Edge on Windows'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', 'Chrome on Windows'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15', 'Safari on macOS'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0 Mobile/15E148 Safari/604.1', 'Chrome on iOS'],
    ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36', 'Chrome on Android'],
    ['Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0 Mobile Safari/537.36', 'Samsung Internet on Android'],
    ['Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0', 'Firefox on Linux'],
    ['Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', 'Chrome on ChromeOS'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0', 'Opera on Windows'],
    ['curl/8.5.0', 'curl'],
    ['Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile', 'A browser on Android'],
    ['<script>alert(1)</script>', 'Unknown browser'],
    ['', 'Unknown browser'],
  ])('%s → %s', (userAgent, expected) => {
    expect(inEnglish(describeUserAgent(userAgent))).toBe(expected);
  });

  it('says the sentence in the reader\'s language and keeps the products\' names', () => {
    expect(inGerman(describeUserAgent('Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0'))).toBe('Firefox unter Linux');
    expect(inGerman(describeUserAgent('Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile'))).toBe('Ein Browser unter Android');
    expect(inGerman(describeUserAgent('curl/8.5.0'))).toBe('curl');
    expect(inGerman(describeUserAgent(undefined))).toBe('Unbekannter Browser');
  });
});
