import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Latency under load is measured apart: vitest.load.config.ts, the last step of npm test.
    exclude: ['test/load/**', 'node_modules/**'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks'
  }
})
