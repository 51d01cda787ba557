import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real daemons, TLS handshakes, scrypt and redis-server processes: generous, never timed assertions.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The reliability suite's full run soaks for five minutes (npm run test:reliability).
    ...(process.env.RELIABILITY_SOAK_SECONDS !== undefined ? { testTimeout: (Number(process.env.RELIABILITY_SOAK_SECONDS) + 120) * 1000 } : {}),
    pool: 'forks',
    reporters: ['default'],
  },
})
