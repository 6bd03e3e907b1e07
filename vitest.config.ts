import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start real HAProxy processes on free ports; keep file-level
    // parallelism modest on a 2-core machine.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
