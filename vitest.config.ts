import { defineConfig } from 'vitest/config';

// `npm test` runs every capability on SQLite. `npm run test:postgres` sets TEST_DATABASE_URL: the same files then
// run on PostgreSQL (a fresh database per file), plus the PostgreSQL-only tests in test/postgres/.
const onPostgres = Boolean(process.env.TEST_DATABASE_URL);

export default defineConfig({
  test: {
    include: ['test/*.test.ts', ...(onPostgres ? ['test/postgres/*.test.ts'] : [])],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two files at a time even on two cores (Vitest's default there is one): the tests mostly wait on servers,
    // SQLite, PostgreSQL and argon2id's thread pool, and every file has its own server, ports, databases and
    // directories. It took CI (.ci/run) from 28 to about 21 minutes.
    maxWorkers: 2,
  },
});
