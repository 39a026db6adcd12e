import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Spawned daemons, brokers and native capture threads: keep files in separate forks.
    pool: 'forks',
    reporters: ['default'],
    globalSetup: ['test/global-setup.ts'],
    // `npm run coverage`: v8 line coverage of src/ (no floor; docs/development.md has the figures per folder).
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary', 'json-summary'],
      reportsDirectory: 'coverage',
      // The figures are worth having when a (flaky) test fails too.
      reportOnFailure: true,
    },
  },
});
