import { defineConfig } from 'vitest/config';

// `npm run test:systemd`: the systemd unit under a real systemd in a Debian 12 container
// (test/systemd). Root, debootstrap and systemd-nspawn; one file, one container at a time.
export default defineConfig({
  test: {
    include: ['test/systemd/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 600_000,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
