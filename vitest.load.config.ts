import { defineConfig } from 'vitest/config'

// Load tests measure latency: they run after the main suite, one file at a time.
export default defineConfig({
  test: {
    include: ['test/load/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 20_000,
    pool: 'forks',
    fileParallelism: false
  }
})
