import { defineConfig } from 'vitest/config';

// `npm run test:systemd`: the systemd unit under a real systemd in a Debian 12 container
// (test/systemd). Root, debootstrap and systemd-nspawn; one file, one container at a time.
export default defineConfig({
  test: {
    include: ['test/systemd/**/*.test.ts'],
    testTimeout: 60_000,
    // A first run debootstraps (about 1-2 min on an idle machine, 8 min seen under heavy load).
    hookTimeout: 720_000,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
