import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The systemd unit under a real systemd: `npm run test:systemd` (its own CI step).
    exclude: [...configDefaults.exclude, 'test/systemd/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start real HAProxy processes on free ports; keep file-level
    // parallelism modest on a 2-core machine.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
