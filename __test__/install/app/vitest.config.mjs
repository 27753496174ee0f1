import { defineConfig } from 'vitest/config'

// Run as `vitest run --pool forks` and `vitest run --pool threads`: several files at once
// either way, so several workers load the addon side by side.
export default defineConfig({
  test: {
    include: ['test/**/*.spec.ts'],
    testTimeout: 30_000,
    poolOptions: {
      threads: { minThreads: 4, maxThreads: 4 },
      forks: { minForks: 4, maxForks: 4 },
    },
  },
})
