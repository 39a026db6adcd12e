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
  },
});
