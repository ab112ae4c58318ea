import { defineConfig } from 'vitest/config';

// A real browser (Debian's chromium, driven by playwright-core) through the hosted pages and the example apps.
// The global setup installs chromium with apt when it is missing; no browser is ever downloaded from elsewhere.
export default defineConfig({
  test: {
    include: ['test/browser/*.test.ts'],
    globalSetup: ['test/browser/install-chromium.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
