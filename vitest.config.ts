import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.{ts,tsx}', 'test/**/*.test.{ts,tsx}', 'deploy/**/*.test.ts', 'bench/**/*.test.ts'],
    // tfjs + wasm and child processes behave best in forked processes; 2 cores here.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: process.env.DPTRAIN_TEST_JSON ? ['default', ['json', { outputFile: process.env.DPTRAIN_TEST_JSON }]] : ['default'],
  },
});
