import { defineConfig } from 'vitest/config';

// Interoperability with other stacks' token verifiers (Debian packages, installed by the tests when missing).
export default defineConfig({
  test: {
    include: ['test/interop/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 600_000,
  },
});
